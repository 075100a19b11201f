-- What it answers: how does each category end up against the value of a swept parameter? The mean
-- log-probability of each category at the last evaluated step, against the value of a parameter,
-- averaged over the runs (e.g. seeds) that share that value. Parameters, both optional: :experiment
-- (unset: every experiment) and :param (a key path such as 'train.lr'; unset: every parameter whose
-- value differs between the experiment's runs).
WITH last AS (
    SELECT run_id, max(step) AS step FROM logprobs GROUP BY run_id
),
varying AS (
    SELECT r.experiment_id, p.key
    FROM params AS p
    JOIN runs AS r ON r.id = p.run_id
    GROUP BY r.experiment_id, p.key
    HAVING count(DISTINCT p.value) > 1
)
SELECT e.name AS experiment,
       p.key AS param,
       p.value AS value,
       c.split,
       c.category,
       avg(c.mean_logprob) AS mean_logprob,
       count(*) AS runs
FROM runs AS r
JOIN experiments AS e ON e.id = r.experiment_id
JOIN params AS p ON p.run_id = r.id
LEFT JOIN varying AS v ON v.experiment_id = r.experiment_id AND v.key = p.key
JOIN last ON last.run_id = r.id
JOIN category_curves AS c ON c.run_id = r.id AND c.step = last.step
WHERE (:experiment IS NULL OR e.name = :experiment)
  AND (p.key = :param OR (:param IS NULL AND v.key IS NOT NULL))
GROUP BY e.name, p.key, p.value, c.split, c.category
ORDER BY e.name, p.key, c.split, c.category, p.value;
