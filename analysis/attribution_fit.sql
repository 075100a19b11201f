-- What it answers: how well does the first-order prediction <grad log pi(y | x), theta_{t+1} - theta_t> explain
-- each category's observed one-step change, per run (`eval.attribution`)? Near 1, the decomposition over training
-- examples (attribution_sources.sql) explains the step; far from it (a large learning rate, a sharp step), the
-- change is not first order and the contributions say less.
--
-- n: (step, response) rows; mean_predicted / mean_observed in nats; pearson_r over the rows (NULL when either
-- side is constant); mean_abs_error = mean |observed - predicted|.
--
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
SELECT x.name AS experiment, u.name AS run, r.category, count(*) AS n,
       round(avg(a.predicted), 6) AS mean_predicted,
       round(avg(a.observed), 6) AS mean_observed,
       round((count(*) * sum(a.predicted * a.observed) - sum(a.predicted) * sum(a.observed))
             / sqrt(nullif((count(*) * sum(a.predicted * a.predicted) - sum(a.predicted) * sum(a.predicted))
                           * (count(*) * sum(a.observed * a.observed) - sum(a.observed) * sum(a.observed)), 0)), 4) AS pearson_r,
       round(avg(abs(a.observed - a.predicted)), 6) AS mean_abs_error
FROM attributions AS a
JOIN responses AS r ON r.id = a.response_id
JOIN runs AS u ON u.id = a.run_id
JOIN experiments AS x ON x.id = u.experiment_id
WHERE :experiment IS NULL OR x.name = :experiment
GROUP BY u.id, r.category
ORDER BY x.name, u.id, r.category;
