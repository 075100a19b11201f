-- What it answers: what an online (ppo) run's policy said as it trained: per run and step, how many
-- responses it sampled, their mean reward (the reward source's score, before penalties), the share that
-- ended their turn, their mean length in tokens and mean summed KL to the reference, and the text of the
-- best-scored sample of the step (ties: the first by data line and sample).
-- Parameter :experiment (optional: unset lists every experiment).
SELECT e.name AS experiment,
       r.id AS run_id,
       r.name AS run,
       s.step,
       count(*) AS samples,
       avg(s.reward) AS mean_reward,
       avg(s.eos) AS eos_rate,
       avg(s.n_tokens) AS mean_tokens,
       avg(s.kl) AS mean_kl,
       (SELECT b.text FROM samples AS b WHERE b.run_id = s.run_id AND b.step = s.step
        ORDER BY b.reward DESC, b.data_line, b.sample LIMIT 1) AS best_text
FROM samples AS s
JOIN runs AS r ON r.id = s.run_id
JOIN experiments AS e ON e.id = r.experiment_id
WHERE :experiment IS NULL OR e.name = :experiment
GROUP BY s.run_id, s.step
ORDER BY e.name, r.id, s.step;
