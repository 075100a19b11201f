-- What it answers: which training examples moved each response category, by the per-step attribution
-- (`eval.attribution`): for every run and category, the five examples whose contributions to the category's
-- responses, summed over every attributed step, raised it most (the carried part of each step, example -1, is
-- left out; attribution_fit.sql says how far the first-order prediction can be trusted).
--
-- contribution: sum over steps and the category's responses of <grad log pi(y | x), u_example> (nats, first
-- order); mean_cosine: the mean normalised similarity cos(g_response, -g_example) (+1: the example's descent
-- direction raises the response fastest); n: the (step, response) rows.
-- data_line is the example's line in the training file.
--
-- Parameters, both optional (unset: every experiment, every category): :experiment, :category.
WITH totals AS (
    SELECT i.run_id, r.category, i.example, i.data_line,
           sum(i.contribution) AS contribution, avg(i.cosine) AS mean_cosine, count(*) AS n
    FROM influences AS i
    JOIN responses AS r ON r.id = i.response_id
    WHERE i.example >= 0
    GROUP BY i.run_id, r.category, i.example
),
ranked AS (
    SELECT t.*, row_number() OVER (PARTITION BY t.run_id, t.category ORDER BY t.contribution DESC, t.example) AS rank
    FROM totals AS t
)
SELECT x.name AS experiment, u.name AS run, k.category, k.rank, k.example, k.data_line,
       round(k.contribution, 6) AS contribution, round(k.mean_cosine, 4) AS mean_cosine, k.n
FROM ranked AS k
JOIN runs AS u ON u.id = k.run_id
JOIN experiments AS x ON x.id = u.experiment_id
WHERE k.rank <= 5 AND (:experiment IS NULL OR x.name = :experiment) AND (:category IS NULL OR k.category = :category)
ORDER BY x.name, u.id, k.category, k.rank;
