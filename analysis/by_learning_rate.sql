-- What it answers: how does the learning rate change what is learned? Runs are grouped by the
-- value of their `train.lr` parameter (runs of one learning rate usually differ by seed); for
-- each group, category and split: how many runs, the mean over runs of each run's final change in
-- log-probability (last minus first evaluation, per response, averaged over responses), its
-- smallest and largest value across runs, and the mean final training loss.
--
-- Runs without a `train.lr` parameter are left out. Replace 'train.lr' with another key of the
-- params table (e.g. 'train.steps', 'objective.beta') to compare runs by that parameter.
--
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
WITH bounds AS (
    SELECT run_id, min(step) AS first_step, max(step) AS last_step
    FROM logprobs GROUP BY run_id
),
per_run AS (
    SELECT b.run_id, r.category, p.split, avg(e.logprob - s.logprob) AS change
    FROM bounds AS b
    JOIN logprobs AS s ON s.run_id = b.run_id AND s.step = b.first_step
    JOIN logprobs AS e ON e.run_id = b.run_id AND e.step = b.last_step AND e.response_id = s.response_id
    JOIN responses AS r ON r.id = s.response_id
    JOIN probes AS p ON p.id = r.probe_id
    GROUP BY b.run_id, r.category, p.split
),
final_loss AS (
    SELECT t.run_id, t.value AS loss
    FROM train_metrics AS t
    WHERE t.name = 'loss'
      AND t.step = (SELECT max(t2.step) FROM train_metrics AS t2 WHERE t2.run_id = t.run_id AND t2.name = 'loss')
)
SELECT x.name AS experiment, lr.value AS lr, q.category, q.split,
       count(*) AS runs,
       round(avg(q.change), 4) AS mean_change,
       round(min(q.change), 4) AS min_change,
       round(max(q.change), 4) AS max_change,
       round(avg(f.loss), 4) AS mean_final_loss
FROM per_run AS q
JOIN params AS lr ON lr.run_id = q.run_id AND lr.key = 'train.lr'
JOIN runs AS u ON u.id = q.run_id
JOIN experiments AS x ON x.id = u.experiment_id
LEFT JOIN final_loss AS f ON f.run_id = q.run_id
WHERE :experiment IS NULL OR x.name = :experiment
GROUP BY x.id, lr.value, q.category, q.split
ORDER BY x.name, lr.value, q.category, q.split;
