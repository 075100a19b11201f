-- How far each category moved from step 0 by the last evaluated step of each run: mean, smallest
-- and largest per-response change, and how many responses rose. Parameter :experiment (experiment
-- name) is optional: unset (NULL), every experiment is listed.
WITH last AS (
    SELECT l.run_id, max(l.step) AS step
    FROM logprobs AS l
    JOIN runs AS r ON r.id = l.run_id
    JOIN experiments AS e ON e.id = r.experiment_id
    WHERE :experiment IS NULL OR e.name = :experiment
    GROUP BY l.run_id
)
SELECT e.name AS experiment,
       r.name AS run,
       d.step,
       d.split,
       d.category,
       avg(d.delta) AS mean_delta,
       min(d.delta) AS min_delta,
       max(d.delta) AS max_delta,
       sum(d.delta > 0) AS n_up,
       count(d.delta) AS n
FROM last
JOIN logprob_deltas AS d ON d.run_id = last.run_id AND d.step = last.step
JOIN runs AS r ON r.id = d.run_id
JOIN experiments AS e ON e.id = r.experiment_id
GROUP BY e.name, r.name, d.step, d.split, d.category
ORDER BY e.name, r.name, d.split, d.category;
