-- What it answers: at each evaluation step of each run, on what fraction of probes does the model
-- find the rejected response more likely than the chosen one? (The study's finding: SFT on the
-- chosen responses alone leaves rejected responses above chosen ones.)
--
-- Per probe, the chosen and rejected log-probabilities are averaged over that probe's responses
-- of the category (usually one each); probes lacking either are left out. Two comparisons:
-- frac_rejected_above is on whole-response log-probabilities (sum over tokens), which favour
-- shorter responses; frac_rejected_above_per_token is on log-probability per token, which does
-- not. mean_margin = mean of (rejected - chosen), in nats.
--
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
WITH per_probe AS (
    SELECT l.run_id, l.step, r.probe_id, p.split,
           avg(CASE WHEN r.category = 'chosen' THEN l.logprob END) AS chosen,
           avg(CASE WHEN r.category = 'rejected' THEN l.logprob END) AS rejected,
           avg(CASE WHEN r.category = 'chosen' THEN l.logprob / nullif(l.n_tokens, 0) END) AS chosen_per_token,
           avg(CASE WHEN r.category = 'rejected' THEN l.logprob / nullif(l.n_tokens, 0) END) AS rejected_per_token
    FROM logprobs AS l
    JOIN responses AS r ON r.id = l.response_id
    JOIN probes AS p ON p.id = r.probe_id
    WHERE r.category IN ('chosen', 'rejected')
    GROUP BY l.run_id, l.step, r.probe_id
)
SELECT x.name AS experiment, u.id AS run_id, u.name AS run, q.step, q.split,
       count(*) AS probes,
       round(avg(q.rejected > q.chosen), 4) AS frac_rejected_above,
       round(avg(q.rejected_per_token > q.chosen_per_token), 4) AS frac_rejected_above_per_token,
       round(avg(q.rejected - q.chosen), 4) AS mean_margin
FROM per_probe AS q
JOIN runs AS u ON u.id = q.run_id
JOIN experiments AS x ON x.id = u.experiment_id
WHERE q.chosen IS NOT NULL AND q.rejected IS NOT NULL
  AND (:experiment IS NULL OR x.name = :experiment)
GROUP BY u.id, q.step, q.split
ORDER BY x.name, u.id, q.step, q.split;
