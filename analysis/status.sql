-- Runs and their status, progress, last loss, times and the process holding each run. Parameter
-- :experiment (experiment name) is optional: unset (NULL), every experiment's runs are listed.
SELECT e.name AS experiment,
       r.id AS run_id,
       r.name AS run,
       r.status,
       r.last_step,
       (SELECT t.value FROM train_metrics AS t
        WHERE t.run_id = r.id AND t.name = 'loss' ORDER BY t.step DESC LIMIT 1) AS last_loss,
       r.started_at,
       r.finished_at,
       r.owner,
       r.error
FROM runs AS r
JOIN experiments AS e ON e.id = r.experiment_id
WHERE :experiment IS NULL OR e.name = :experiment
ORDER BY r.id;
