-- What it answers: per run, category and split, the mean argmax_logprob (log-probability of the
-- teacher-forced argmax sequence) and except_argmax (log of the mass outside the argmax, summed over
-- positions) at the run's first and last evaluation, and their changes: the learning-dynamics paper's
-- view of the squeezing effect (argmax up and the rest down: the distribution was squeezed onto its
-- top tokens). :experiment optional (NULL lists every experiment).
WITH span AS (
    SELECT run_id, min(step) AS first_step, max(step) AS last_step FROM measures
    WHERE name = 'argmax_logprob' GROUP BY run_id
),
ends AS (
    SELECT c.run_id, c.category, c.split, c.measure, c.step = s.first_step AS is_first, c.mean
    FROM measure_curves AS c JOIN span AS s ON s.run_id = c.run_id
    WHERE c.measure IN ('argmax_logprob', 'except_argmax') AND c.step IN (s.first_step, s.last_step)
)
SELECT e.name AS experiment, r.name AS run, x.category, x.split,
       round(max(CASE WHEN x.measure = 'argmax_logprob' AND x.is_first THEN x.mean END), 4) AS argmax_start,
       round(max(CASE WHEN x.measure = 'argmax_logprob' AND NOT x.is_first THEN x.mean END), 4) AS argmax_end,
       round(max(CASE WHEN x.measure = 'except_argmax' AND x.is_first THEN x.mean END), 4) AS rest_start,
       round(max(CASE WHEN x.measure = 'except_argmax' AND NOT x.is_first THEN x.mean END), 4) AS rest_end,
       round(max(CASE WHEN x.measure = 'argmax_logprob' AND NOT x.is_first THEN x.mean END)
             - max(CASE WHEN x.measure = 'argmax_logprob' AND x.is_first THEN x.mean END), 4) AS argmax_change,
       round(max(CASE WHEN x.measure = 'except_argmax' AND NOT x.is_first THEN x.mean END)
             - max(CASE WHEN x.measure = 'except_argmax' AND x.is_first THEN x.mean END), 4) AS rest_change
FROM ends AS x
JOIN runs AS r ON r.id = x.run_id
JOIN experiments AS e ON e.id = r.experiment_id
WHERE :experiment IS NULL OR e.name = :experiment
GROUP BY e.name, r.name, x.category, x.split
ORDER BY e.name, r.name, x.split, x.category;
