-- A sweep read off the flattened config: the mean log-probability of each category at the last
-- evaluated step, against the value of one parameter, averaged over the runs (e.g. seeds) that
-- share that value. Parameters :experiment and :param (a key path such as 'train.lr').
WITH last AS (
    SELECT run_id, max(step) AS step FROM logprobs GROUP BY run_id
)
SELECT p.value AS value,
       c.split,
       c.category,
       avg(c.mean_logprob) AS mean_logprob,
       count(*) AS runs
FROM runs AS r
JOIN experiments AS e ON e.id = r.experiment_id
JOIN params AS p ON p.run_id = r.id AND p.key = :param
JOIN last ON last.run_id = r.id
JOIN category_curves AS c ON c.run_id = r.id AND c.step = last.step
WHERE e.name = :experiment
GROUP BY p.value, c.split, c.category
ORDER BY c.split, c.category, p.value;
