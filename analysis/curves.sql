-- Mean log-probability of each response category at every evaluation step, per run and split,
-- with its standard error: the curves of the report. Parameter :experiment (experiment name) is
-- optional: unset (NULL), every experiment is listed.
SELECT e.name AS experiment,
       r.name AS run,
       c.step,
       c.split,
       c.category,
       c.mean_logprob,
       c.sem,
       c.mean_token_logprob,
       c.n
FROM runs AS r
JOIN experiments AS e ON e.id = r.experiment_id
JOIN category_curves AS c ON c.run_id = r.id
WHERE :experiment IS NULL OR e.name = :experiment
ORDER BY e.name, r.name, c.split, c.category, c.step;
