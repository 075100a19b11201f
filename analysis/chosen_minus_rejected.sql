-- Does SFT on chosen responses make them more likely than the rejected ones? Mean log-probability
-- of `chosen` minus that of `rejected`, per run, step and split (negative: rejected still ahead).
-- Parameter :experiment (experiment name) is optional: unset (NULL), every experiment is listed.
SELECT e.name AS experiment,
       r.name AS run,
       ch.step,
       ch.split,
       ch.mean_logprob AS chosen,
       rj.mean_logprob AS rejected,
       ch.mean_logprob - rj.mean_logprob AS chosen_minus_rejected
FROM runs AS r
JOIN experiments AS e ON e.id = r.experiment_id
JOIN category_curves AS ch ON ch.run_id = r.id AND ch.category = 'chosen'
JOIN category_curves AS rj ON rj.run_id = ch.run_id AND rj.step = ch.step AND rj.split = ch.split
                          AND rj.category = 'rejected'
WHERE :experiment IS NULL OR e.name = :experiment
ORDER BY e.name, r.name, ch.split, ch.step;
