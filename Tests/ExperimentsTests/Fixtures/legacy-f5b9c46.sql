PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')));
INSERT INTO schema_version VALUES(1,'2026-12-07T08:52:59.729Z');
INSERT INTO schema_version VALUES(2,'2026-12-07T08:52:59.729Z');
INSERT INTO schema_version VALUES(3,'2026-12-07T08:52:59.730Z');
INSERT INTO schema_version VALUES(4,'2026-12-07T08:52:59.730Z');
INSERT INTO schema_version VALUES(5,'2026-12-07T08:52:59.730Z');
INSERT INTO schema_version VALUES(6,'2026-12-07T08:52:59.730Z');
INSERT INTO schema_version VALUES(7,'2026-12-07T08:52:59.732Z');
CREATE TABLE experiments (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    spec        TEXT NOT NULL,
    spec_sha256 TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
INSERT INTO experiments VALUES(1,'tiny-sweep',replace('// A 2x2 sweep on the tiny preset: runs in seconds, used by the end-to-end tests.\n{\n  name: "tiny-sweep",\n  model: { preset: "tiny", seed: 0 },\n  template: "hh",\n  data: {\n    train: { path: "tiny-train.jsonl" },\n    probes: {\n      path: "tiny-probes.jsonl",\n      categories: {\n        chosen: "chosen", rejected: "rejected", non_response: "non_response",\n        random: { derive: "other_prompt", field: "chosen" },\n      },\n    },\n  },\n  train: { steps: 4, batch_size: 2, lr: 1e-3, warmup: 1, max_length: 160 },\n  eval: { every: 2 },\n  sweep: { "train.lr": [1e-3, 3e-3], seed: [1, 2] },\n}\n','\n',char(10)),'4364713d6dd5bdc695fbf31e4b45f89da626df02388dcdecceeed305a0b2638f','2026-12-07T08:52:59.734Z');
INSERT INTO experiments VALUES(2,'tiny-threads',replace('// The tiny preset at 3 threads: a run whose identity held threads: 3 before issue 40 (IdentityTests).\n{\n  name: "tiny-threads",\n  model: { preset: "tiny", seed: 0 },\n  template: "hh",\n  data: {\n    train: { path: "tiny-train.jsonl" },\n    probes: {\n      path: "tiny-probes.jsonl",\n      categories: {\n        chosen: "chosen", rejected: "rejected", non_response: "non_response",\n        random: { derive: "other_prompt", field: "chosen" },\n      },\n    },\n  },\n  train: { steps: 4, batch_size: 2, lr: 1e-3, warmup: 1, max_length: 160 },\n  eval: { every: 2 },\n  threads: 3,\n}\n','\n',char(10)),'95f6d5d5dfd8568df9bd8cb96ac03ba8bfbd3215c7c40c6125687b1c0cb99105','2026-12-07T08:53:00.089Z');
CREATE TABLE runs (
    id            INTEGER PRIMARY KEY,
    experiment_id INTEGER NOT NULL REFERENCES experiments(id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    config        TEXT NOT NULL,
    config_sha256 TEXT NOT NULL UNIQUE,
    seed          INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'planned'
                  CHECK (status IN ('planned', 'running', 'finished', 'failed', 'interrupted')),
    error         TEXT,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')),
    started_at    TEXT,
    finished_at   TEXT,
    last_step     INTEGER,
    owner         TEXT,
    heartbeat_at  TEXT
);
INSERT INTO runs VALUES(1,1,'tiny-sweep/lr=0.001,seed=1','{"checkpoint":{"every":2},"data":{"probes":{"categories":{"chosen":"chosen","non_response":"non_response","random":{"derive":"other_prompt","field":"chosen"},"rejected":"rejected"},"path":"tiny-probes.jsonl"},"train":{"limit":0,"path":"tiny-train.jsonl"}},"eval":{"at_start":true,"every":2},"model":{"preset":"tiny","seed":0},"name":"tiny-sweep","objective":{"kind":"sft","loss_on":"response","target":"chosen"},"seed":1,"template":"hh","threads":2,"train":{"batch_size":2,"beta1":0.9,"beta2":0.999,"grad_accum":1,"grad_clip":1,"lr":0.001,"max_length":160,"min_lr_ratio":0,"schedule":"cosine","steps":4,"warmup":1,"weight_decay":0}}','2c9297483186e4227f04ef7e80695350a070d330656849d228697096079c2d38',1,'finished',NULL,'2026-12-07T08:52:59.736Z','2026-12-07T08:52:59.739Z','2026-12-07T08:52:59.869Z',4,'vm:10851','2026-12-07T08:52:59.868Z');
INSERT INTO runs VALUES(2,1,'tiny-sweep/lr=0.001,seed=2','{"checkpoint":{"every":2},"data":{"probes":{"categories":{"chosen":"chosen","non_response":"non_response","random":{"derive":"other_prompt","field":"chosen"},"rejected":"rejected"},"path":"tiny-probes.jsonl"},"train":{"limit":0,"path":"tiny-train.jsonl"}},"eval":{"at_start":true,"every":2},"model":{"preset":"tiny","seed":0},"name":"tiny-sweep","objective":{"kind":"sft","loss_on":"response","target":"chosen"},"seed":2,"template":"hh","threads":2,"train":{"batch_size":2,"beta1":0.9,"beta2":0.999,"grad_accum":1,"grad_clip":1,"lr":0.001,"max_length":160,"min_lr_ratio":0,"schedule":"cosine","steps":4,"warmup":1,"weight_decay":0}}','f92be0c9eacc9d960eca35a5fa5a793f47218e18d06e943812cfb12d4a4c73af',2,'finished',NULL,'2026-12-07T08:52:59.737Z','2026-12-07T08:52:59.869Z','2026-12-07T08:52:59.935Z',4,'vm:10851','2026-12-07T08:52:59.935Z');
INSERT INTO runs VALUES(3,1,'tiny-sweep/lr=0.003,seed=1','{"checkpoint":{"every":2},"data":{"probes":{"categories":{"chosen":"chosen","non_response":"non_response","random":{"derive":"other_prompt","field":"chosen"},"rejected":"rejected"},"path":"tiny-probes.jsonl"},"train":{"limit":0,"path":"tiny-train.jsonl"}},"eval":{"at_start":true,"every":2},"model":{"preset":"tiny","seed":0},"name":"tiny-sweep","objective":{"kind":"sft","loss_on":"response","target":"chosen"},"seed":1,"template":"hh","threads":2,"train":{"batch_size":2,"beta1":0.9,"beta2":0.999,"grad_accum":1,"grad_clip":1,"lr":0.003,"max_length":160,"min_lr_ratio":0,"schedule":"cosine","steps":4,"warmup":1,"weight_decay":0}}','16fc2f823c76a001229774daf91222e2dc11f2ba5cc3a2e0a9b25eead4b50be9',1,'finished',NULL,'2026-12-07T08:52:59.737Z','2026-12-07T08:52:59.935Z','2026-12-07T08:52:59.993Z',4,'vm:10851','2026-12-07T08:52:59.993Z');
INSERT INTO runs VALUES(4,1,'tiny-sweep/lr=0.003,seed=2','{"checkpoint":{"every":2},"data":{"probes":{"categories":{"chosen":"chosen","non_response":"non_response","random":{"derive":"other_prompt","field":"chosen"},"rejected":"rejected"},"path":"tiny-probes.jsonl"},"train":{"limit":0,"path":"tiny-train.jsonl"}},"eval":{"at_start":true,"every":2},"model":{"preset":"tiny","seed":0},"name":"tiny-sweep","objective":{"kind":"sft","loss_on":"response","target":"chosen"},"seed":2,"template":"hh","threads":2,"train":{"batch_size":2,"beta1":0.9,"beta2":0.999,"grad_accum":1,"grad_clip":1,"lr":0.003,"max_length":160,"min_lr_ratio":0,"schedule":"cosine","steps":4,"warmup":1,"weight_decay":0}}','dc1d38a74cc2e0679c735f09e3ded2fe3b3b8cf9c4c7dc16838726bc89b6cc49',2,'finished',NULL,'2026-12-07T08:52:59.738Z','2026-12-07T08:52:59.993Z','2026-12-07T08:53:00.055Z',4,'vm:10851','2026-12-07T08:53:00.055Z');
INSERT INTO runs VALUES(5,2,'tiny-threads','{"checkpoint":{"every":2},"data":{"probes":{"categories":{"chosen":"chosen","non_response":"non_response","random":{"derive":"other_prompt","field":"chosen"},"rejected":"rejected"},"path":"tiny-probes.jsonl"},"train":{"limit":0,"path":"tiny-train.jsonl"}},"eval":{"at_start":true,"every":2},"model":{"preset":"tiny","seed":0},"name":"tiny-threads","objective":{"kind":"sft","loss_on":"response","target":"chosen"},"seed":1,"template":"hh","threads":3,"train":{"batch_size":2,"beta1":0.9,"beta2":0.999,"grad_accum":1,"grad_clip":1,"lr":0.001,"max_length":160,"min_lr_ratio":0,"schedule":"cosine","steps":4,"warmup":1,"weight_decay":0}}','25682ca72b2ba23d6cca73f8d9ff198a2ecbb8d9af5a68caca6c073e085cdb6a',1,'finished',NULL,'2026-12-07T08:53:00.091Z','2026-12-07T08:53:00.091Z','2026-12-07T08:53:00.202Z',4,'vm:10858','2026-12-07T08:53:00.201Z');
CREATE TABLE params (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value,
    PRIMARY KEY (run_id, key)
) WITHOUT ROWID;
INSERT INTO params VALUES(1,'checkpoint.every',2);
INSERT INTO params VALUES(2,'checkpoint.every',2);
INSERT INTO params VALUES(3,'checkpoint.every',2);
INSERT INTO params VALUES(4,'checkpoint.every',2);
INSERT INTO params VALUES(5,'checkpoint.every',2);
INSERT INTO params VALUES(1,'data.probes.categories.chosen','chosen');
INSERT INTO params VALUES(2,'data.probes.categories.chosen','chosen');
INSERT INTO params VALUES(3,'data.probes.categories.chosen','chosen');
INSERT INTO params VALUES(4,'data.probes.categories.chosen','chosen');
INSERT INTO params VALUES(5,'data.probes.categories.chosen','chosen');
INSERT INTO params VALUES(1,'data.probes.categories.non_response','non_response');
INSERT INTO params VALUES(2,'data.probes.categories.non_response','non_response');
INSERT INTO params VALUES(3,'data.probes.categories.non_response','non_response');
INSERT INTO params VALUES(4,'data.probes.categories.non_response','non_response');
INSERT INTO params VALUES(5,'data.probes.categories.non_response','non_response');
INSERT INTO params VALUES(1,'data.probes.categories.random.derive','other_prompt');
INSERT INTO params VALUES(2,'data.probes.categories.random.derive','other_prompt');
INSERT INTO params VALUES(3,'data.probes.categories.random.derive','other_prompt');
INSERT INTO params VALUES(4,'data.probes.categories.random.derive','other_prompt');
INSERT INTO params VALUES(5,'data.probes.categories.random.derive','other_prompt');
INSERT INTO params VALUES(1,'data.probes.categories.random.field','chosen');
INSERT INTO params VALUES(2,'data.probes.categories.random.field','chosen');
INSERT INTO params VALUES(3,'data.probes.categories.random.field','chosen');
INSERT INTO params VALUES(4,'data.probes.categories.random.field','chosen');
INSERT INTO params VALUES(5,'data.probes.categories.random.field','chosen');
INSERT INTO params VALUES(1,'data.probes.categories.rejected','rejected');
INSERT INTO params VALUES(2,'data.probes.categories.rejected','rejected');
INSERT INTO params VALUES(3,'data.probes.categories.rejected','rejected');
INSERT INTO params VALUES(4,'data.probes.categories.rejected','rejected');
INSERT INTO params VALUES(5,'data.probes.categories.rejected','rejected');
INSERT INTO params VALUES(1,'data.probes.path','tiny-probes.jsonl');
INSERT INTO params VALUES(2,'data.probes.path','tiny-probes.jsonl');
INSERT INTO params VALUES(3,'data.probes.path','tiny-probes.jsonl');
INSERT INTO params VALUES(4,'data.probes.path','tiny-probes.jsonl');
INSERT INTO params VALUES(5,'data.probes.path','tiny-probes.jsonl');
INSERT INTO params VALUES(1,'data.train.limit',0);
INSERT INTO params VALUES(2,'data.train.limit',0);
INSERT INTO params VALUES(3,'data.train.limit',0);
INSERT INTO params VALUES(4,'data.train.limit',0);
INSERT INTO params VALUES(5,'data.train.limit',0);
INSERT INTO params VALUES(1,'data.train.path','tiny-train.jsonl');
INSERT INTO params VALUES(2,'data.train.path','tiny-train.jsonl');
INSERT INTO params VALUES(3,'data.train.path','tiny-train.jsonl');
INSERT INTO params VALUES(4,'data.train.path','tiny-train.jsonl');
INSERT INTO params VALUES(5,'data.train.path','tiny-train.jsonl');
INSERT INTO params VALUES(1,'eval.at_start',1);
INSERT INTO params VALUES(2,'eval.at_start',1);
INSERT INTO params VALUES(3,'eval.at_start',1);
INSERT INTO params VALUES(4,'eval.at_start',1);
INSERT INTO params VALUES(5,'eval.at_start',1);
INSERT INTO params VALUES(1,'eval.every',2);
INSERT INTO params VALUES(2,'eval.every',2);
INSERT INTO params VALUES(3,'eval.every',2);
INSERT INTO params VALUES(4,'eval.every',2);
INSERT INTO params VALUES(5,'eval.every',2);
INSERT INTO params VALUES(1,'eval.kl',0);
INSERT INTO params VALUES(2,'eval.kl',0);
INSERT INTO params VALUES(3,'eval.kl',0);
INSERT INTO params VALUES(4,'eval.kl',0);
INSERT INTO params VALUES(5,'eval.kl',0);
INSERT INTO params VALUES(1,'eval.precision','fp32');
INSERT INTO params VALUES(2,'eval.precision','fp32');
INSERT INTO params VALUES(3,'eval.precision','fp32');
INSERT INTO params VALUES(4,'eval.precision','fp32');
INSERT INTO params VALUES(5,'eval.precision','fp32');
INSERT INTO params VALUES(1,'eval.tokens',0);
INSERT INTO params VALUES(2,'eval.tokens',0);
INSERT INTO params VALUES(3,'eval.tokens',0);
INSERT INTO params VALUES(4,'eval.tokens',0);
INSERT INTO params VALUES(5,'eval.tokens',0);
INSERT INTO params VALUES(1,'model.preset','tiny');
INSERT INTO params VALUES(2,'model.preset','tiny');
INSERT INTO params VALUES(3,'model.preset','tiny');
INSERT INTO params VALUES(4,'model.preset','tiny');
INSERT INTO params VALUES(5,'model.preset','tiny');
INSERT INTO params VALUES(1,'model.seed',0);
INSERT INTO params VALUES(2,'model.seed',0);
INSERT INTO params VALUES(3,'model.seed',0);
INSERT INTO params VALUES(4,'model.seed',0);
INSERT INTO params VALUES(5,'model.seed',0);
INSERT INTO params VALUES(1,'name','tiny-sweep');
INSERT INTO params VALUES(2,'name','tiny-sweep');
INSERT INTO params VALUES(3,'name','tiny-sweep');
INSERT INTO params VALUES(4,'name','tiny-sweep');
INSERT INTO params VALUES(5,'name','tiny-threads');
INSERT INTO params VALUES(1,'objective.kind','sft');
INSERT INTO params VALUES(2,'objective.kind','sft');
INSERT INTO params VALUES(3,'objective.kind','sft');
INSERT INTO params VALUES(4,'objective.kind','sft');
INSERT INTO params VALUES(5,'objective.kind','sft');
INSERT INTO params VALUES(1,'objective.loss_on','response');
INSERT INTO params VALUES(2,'objective.loss_on','response');
INSERT INTO params VALUES(3,'objective.loss_on','response');
INSERT INTO params VALUES(4,'objective.loss_on','response');
INSERT INTO params VALUES(5,'objective.loss_on','response');
INSERT INTO params VALUES(1,'objective.target','chosen');
INSERT INTO params VALUES(2,'objective.target','chosen');
INSERT INTO params VALUES(3,'objective.target','chosen');
INSERT INTO params VALUES(4,'objective.target','chosen');
INSERT INTO params VALUES(5,'objective.target','chosen');
INSERT INTO params VALUES(1,'seed',1);
INSERT INTO params VALUES(3,'seed',1);
INSERT INTO params VALUES(5,'seed',1);
INSERT INTO params VALUES(2,'seed',2);
INSERT INTO params VALUES(4,'seed',2);
INSERT INTO params VALUES(1,'template','hh');
INSERT INTO params VALUES(2,'template','hh');
INSERT INTO params VALUES(3,'template','hh');
INSERT INTO params VALUES(4,'template','hh');
INSERT INTO params VALUES(5,'template','hh');
INSERT INTO params VALUES(1,'threads',2);
INSERT INTO params VALUES(2,'threads',2);
INSERT INTO params VALUES(3,'threads',2);
INSERT INTO params VALUES(4,'threads',2);
INSERT INTO params VALUES(5,'threads',3);
INSERT INTO params VALUES(1,'train.batch_size',2);
INSERT INTO params VALUES(2,'train.batch_size',2);
INSERT INTO params VALUES(3,'train.batch_size',2);
INSERT INTO params VALUES(4,'train.batch_size',2);
INSERT INTO params VALUES(5,'train.batch_size',2);
INSERT INTO params VALUES(1,'train.beta1',0.9000000000000000222);
INSERT INTO params VALUES(2,'train.beta1',0.9000000000000000222);
INSERT INTO params VALUES(3,'train.beta1',0.9000000000000000222);
INSERT INTO params VALUES(4,'train.beta1',0.9000000000000000222);
INSERT INTO params VALUES(5,'train.beta1',0.9000000000000000222);
INSERT INTO params VALUES(1,'train.beta2',0.99899999999999999911);
INSERT INTO params VALUES(2,'train.beta2',0.99899999999999999911);
INSERT INTO params VALUES(3,'train.beta2',0.99899999999999999911);
INSERT INTO params VALUES(4,'train.beta2',0.99899999999999999911);
INSERT INTO params VALUES(5,'train.beta2',0.99899999999999999911);
INSERT INTO params VALUES(1,'train.checkpoint_activations',0);
INSERT INTO params VALUES(2,'train.checkpoint_activations',0);
INSERT INTO params VALUES(3,'train.checkpoint_activations',0);
INSERT INTO params VALUES(4,'train.checkpoint_activations',0);
INSERT INTO params VALUES(5,'train.checkpoint_activations',0);
INSERT INTO params VALUES(1,'train.grad_accum',1);
INSERT INTO params VALUES(2,'train.grad_accum',1);
INSERT INTO params VALUES(3,'train.grad_accum',1);
INSERT INTO params VALUES(4,'train.grad_accum',1);
INSERT INTO params VALUES(5,'train.grad_accum',1);
INSERT INTO params VALUES(1,'train.grad_clip',1);
INSERT INTO params VALUES(2,'train.grad_clip',1);
INSERT INTO params VALUES(3,'train.grad_clip',1);
INSERT INTO params VALUES(4,'train.grad_clip',1);
INSERT INTO params VALUES(5,'train.grad_clip',1);
INSERT INTO params VALUES(1,'train.lr',0.0010000000000000000208);
INSERT INTO params VALUES(2,'train.lr',0.0010000000000000000208);
INSERT INTO params VALUES(5,'train.lr',0.0010000000000000000208);
INSERT INTO params VALUES(3,'train.lr',0.0030000000000000000624);
INSERT INTO params VALUES(4,'train.lr',0.0030000000000000000624);
INSERT INTO params VALUES(1,'train.max_length',160);
INSERT INTO params VALUES(2,'train.max_length',160);
INSERT INTO params VALUES(3,'train.max_length',160);
INSERT INTO params VALUES(4,'train.max_length',160);
INSERT INTO params VALUES(5,'train.max_length',160);
INSERT INTO params VALUES(1,'train.min_lr_ratio',0);
INSERT INTO params VALUES(2,'train.min_lr_ratio',0);
INSERT INTO params VALUES(3,'train.min_lr_ratio',0);
INSERT INTO params VALUES(4,'train.min_lr_ratio',0);
INSERT INTO params VALUES(5,'train.min_lr_ratio',0);
INSERT INTO params VALUES(1,'train.precision','fp32');
INSERT INTO params VALUES(2,'train.precision','fp32');
INSERT INTO params VALUES(3,'train.precision','fp32');
INSERT INTO params VALUES(4,'train.precision','fp32');
INSERT INTO params VALUES(5,'train.precision','fp32');
INSERT INTO params VALUES(1,'train.schedule','cosine');
INSERT INTO params VALUES(2,'train.schedule','cosine');
INSERT INTO params VALUES(3,'train.schedule','cosine');
INSERT INTO params VALUES(4,'train.schedule','cosine');
INSERT INTO params VALUES(5,'train.schedule','cosine');
INSERT INTO params VALUES(1,'train.steps',4);
INSERT INTO params VALUES(2,'train.steps',4);
INSERT INTO params VALUES(3,'train.steps',4);
INSERT INTO params VALUES(4,'train.steps',4);
INSERT INTO params VALUES(5,'train.steps',4);
INSERT INTO params VALUES(1,'train.warmup',1);
INSERT INTO params VALUES(2,'train.warmup',1);
INSERT INTO params VALUES(3,'train.warmup',1);
INSERT INTO params VALUES(4,'train.warmup',1);
INSERT INTO params VALUES(5,'train.warmup',1);
INSERT INTO params VALUES(1,'train.weight_decay',0);
INSERT INTO params VALUES(2,'train.weight_decay',0);
INSERT INTO params VALUES(3,'train.weight_decay',0);
INSERT INTO params VALUES(4,'train.weight_decay',0);
INSERT INTO params VALUES(5,'train.weight_decay',0);
CREATE TABLE probes (
    id        INTEGER PRIMARY KEY,
    probe_set TEXT NOT NULL,
    idx       INTEGER NOT NULL,
    prompt    TEXT NOT NULL,
    split     TEXT NOT NULL CHECK (split IN ('train', 'heldout')),
    UNIQUE (probe_set, idx)
);
INSERT INTO probes VALUES(1,'tiny-sweep:tiny-probes.jsonl:2b7ecc2041c0',0,'How do I boil an egg?','train');
INSERT INTO probes VALUES(2,'tiny-sweep:tiny-probes.jsonl:2b7ecc2041c0',1,'Why is the sky blue?','train');
INSERT INTO probes VALUES(3,'tiny-sweep:tiny-probes.jsonl:2b7ecc2041c0',2,'How do I water a cactus?','heldout');
INSERT INTO probes VALUES(4,'tiny-sweep:tiny-probes.jsonl:2b7ecc2041c0',3,'What is a prime number?','heldout');
INSERT INTO probes VALUES(5,'tiny-sweep:tiny-probes.jsonl:729675d1e81f',0,'How do I boil an egg?','train');
INSERT INTO probes VALUES(6,'tiny-sweep:tiny-probes.jsonl:729675d1e81f',1,'Why is the sky blue?','train');
INSERT INTO probes VALUES(7,'tiny-sweep:tiny-probes.jsonl:729675d1e81f',2,'How do I water a cactus?','heldout');
INSERT INTO probes VALUES(8,'tiny-sweep:tiny-probes.jsonl:729675d1e81f',3,'What is a prime number?','heldout');
INSERT INTO probes VALUES(9,'tiny-threads:tiny-probes.jsonl:2b7ecc2041c0',0,'How do I boil an egg?','train');
INSERT INTO probes VALUES(10,'tiny-threads:tiny-probes.jsonl:2b7ecc2041c0',1,'Why is the sky blue?','train');
INSERT INTO probes VALUES(11,'tiny-threads:tiny-probes.jsonl:2b7ecc2041c0',2,'How do I water a cactus?','heldout');
INSERT INTO probes VALUES(12,'tiny-threads:tiny-probes.jsonl:2b7ecc2041c0',3,'What is a prime number?','heldout');
CREATE TABLE responses (
    id       INTEGER PRIMARY KEY,
    probe_id INTEGER NOT NULL REFERENCES probes(id) ON DELETE CASCADE,
    category TEXT NOT NULL,
    text     TEXT NOT NULL,
    origin   TEXT NOT NULL,
    UNIQUE (probe_id, category, text)
);
INSERT INTO responses VALUES(1,1,'chosen','Put it in boiling water for nine minutes, then cool it in cold water.','data');
INSERT INTO responses VALUES(2,1,'rejected','Cook it for a while.','data');
INSERT INTO responses VALUES(3,1,'random','Water deeply once the soil is completely dry, about every two to three weeks.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(4,1,'non_response','The train leaves at noon.','data');
INSERT INTO responses VALUES(5,2,'chosen','Air scatters short blue wavelengths of sunlight more than red ones.','data');
INSERT INTO responses VALUES(6,2,'rejected','Because of the sun.','data');
INSERT INTO responses VALUES(7,2,'random','Put it in boiling water for nine minutes, then cool it in cold water.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(8,2,'non_response','My cat likes the sofa.','data');
INSERT INTO responses VALUES(9,3,'chosen','Water deeply once the soil is completely dry, about every two to three weeks.','data');
INSERT INTO responses VALUES(10,3,'rejected','Water it every day.','data');
INSERT INTO responses VALUES(11,3,'random','A whole number above one whose only divisors are one and itself.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(12,3,'non_response','Tuesday was cloudy.','data');
INSERT INTO responses VALUES(13,4,'chosen','A whole number above one whose only divisors are one and itself.','data');
INSERT INTO responses VALUES(14,4,'rejected','An important number.','data');
INSERT INTO responses VALUES(15,4,'random','Air scatters short blue wavelengths of sunlight more than red ones.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(16,4,'non_response','The library opens at nine.','data');
INSERT INTO responses VALUES(17,5,'chosen','Put it in boiling water for nine minutes, then cool it in cold water.','data');
INSERT INTO responses VALUES(18,5,'rejected','Cook it for a while.','data');
INSERT INTO responses VALUES(19,5,'random','A whole number above one whose only divisors are one and itself.','derived:other_prompt:seed=2');
INSERT INTO responses VALUES(20,5,'non_response','The train leaves at noon.','data');
INSERT INTO responses VALUES(21,6,'chosen','Air scatters short blue wavelengths of sunlight more than red ones.','data');
INSERT INTO responses VALUES(22,6,'rejected','Because of the sun.','data');
INSERT INTO responses VALUES(23,6,'random','Water deeply once the soil is completely dry, about every two to three weeks.','derived:other_prompt:seed=2');
INSERT INTO responses VALUES(24,6,'non_response','My cat likes the sofa.','data');
INSERT INTO responses VALUES(25,7,'chosen','Water deeply once the soil is completely dry, about every two to three weeks.','data');
INSERT INTO responses VALUES(26,7,'rejected','Water it every day.','data');
INSERT INTO responses VALUES(27,7,'random','Air scatters short blue wavelengths of sunlight more than red ones.','derived:other_prompt:seed=2');
INSERT INTO responses VALUES(28,7,'non_response','Tuesday was cloudy.','data');
INSERT INTO responses VALUES(29,8,'chosen','A whole number above one whose only divisors are one and itself.','data');
INSERT INTO responses VALUES(30,8,'rejected','An important number.','data');
INSERT INTO responses VALUES(31,8,'random','Put it in boiling water for nine minutes, then cool it in cold water.','derived:other_prompt:seed=2');
INSERT INTO responses VALUES(32,8,'non_response','The library opens at nine.','data');
INSERT INTO responses VALUES(33,9,'chosen','Put it in boiling water for nine minutes, then cool it in cold water.','data');
INSERT INTO responses VALUES(34,9,'rejected','Cook it for a while.','data');
INSERT INTO responses VALUES(35,9,'random','Water deeply once the soil is completely dry, about every two to three weeks.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(36,9,'non_response','The train leaves at noon.','data');
INSERT INTO responses VALUES(37,10,'chosen','Air scatters short blue wavelengths of sunlight more than red ones.','data');
INSERT INTO responses VALUES(38,10,'rejected','Because of the sun.','data');
INSERT INTO responses VALUES(39,10,'random','Put it in boiling water for nine minutes, then cool it in cold water.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(40,10,'non_response','My cat likes the sofa.','data');
INSERT INTO responses VALUES(41,11,'chosen','Water deeply once the soil is completely dry, about every two to three weeks.','data');
INSERT INTO responses VALUES(42,11,'rejected','Water it every day.','data');
INSERT INTO responses VALUES(43,11,'random','A whole number above one whose only divisors are one and itself.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(44,11,'non_response','Tuesday was cloudy.','data');
INSERT INTO responses VALUES(45,12,'chosen','A whole number above one whose only divisors are one and itself.','data');
INSERT INTO responses VALUES(46,12,'rejected','An important number.','data');
INSERT INTO responses VALUES(47,12,'random','Air scatters short blue wavelengths of sunlight more than red ones.','derived:other_prompt:seed=1');
INSERT INTO responses VALUES(48,12,'non_response','The library opens at nine.','data');
CREATE TABLE logprobs (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    logprob     REAL NOT NULL,
    n_tokens    INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, response_id)
) WITHOUT ROWID;
CREATE TABLE train_metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    name   TEXT NOT NULL,
    value  REAL,
    PRIMARY KEY (run_id, step, name)
) WITHOUT ROWID;
CREATE TABLE store_info (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO store_info VALUES('store_id','494964a63702805850e2d15ce04abb9d');
CREATE TABLE run_inputs (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    input  TEXT NOT NULL,
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    PRIMARY KEY (run_id, input)
) WITHOUT ROWID;
INSERT INTO run_inputs VALUES(1,'probes','/tmp/fx/tiny-probes.jsonl','ffb7201ba36a6b4242d8c20062d347dbc98c1f1152c8dee1d7a8a281c54d4c7e');
INSERT INTO run_inputs VALUES(1,'train','/tmp/fx/tiny-train.jsonl','463279a3724188285ea4e5cab754c9046fa4c49ba35f2d4312e6a28f2c7cd687');
INSERT INTO run_inputs VALUES(2,'probes','/tmp/fx/tiny-probes.jsonl','ffb7201ba36a6b4242d8c20062d347dbc98c1f1152c8dee1d7a8a281c54d4c7e');
INSERT INTO run_inputs VALUES(2,'train','/tmp/fx/tiny-train.jsonl','463279a3724188285ea4e5cab754c9046fa4c49ba35f2d4312e6a28f2c7cd687');
INSERT INTO run_inputs VALUES(3,'probes','/tmp/fx/tiny-probes.jsonl','ffb7201ba36a6b4242d8c20062d347dbc98c1f1152c8dee1d7a8a281c54d4c7e');
INSERT INTO run_inputs VALUES(3,'train','/tmp/fx/tiny-train.jsonl','463279a3724188285ea4e5cab754c9046fa4c49ba35f2d4312e6a28f2c7cd687');
INSERT INTO run_inputs VALUES(4,'probes','/tmp/fx/tiny-probes.jsonl','ffb7201ba36a6b4242d8c20062d347dbc98c1f1152c8dee1d7a8a281c54d4c7e');
INSERT INTO run_inputs VALUES(4,'train','/tmp/fx/tiny-train.jsonl','463279a3724188285ea4e5cab754c9046fa4c49ba35f2d4312e6a28f2c7cd687');
INSERT INTO run_inputs VALUES(5,'probes','/tmp/fx/tiny-probes.jsonl','ffb7201ba36a6b4242d8c20062d347dbc98c1f1152c8dee1d7a8a281c54d4c7e');
INSERT INTO run_inputs VALUES(5,'train','/tmp/fx/tiny-train.jsonl','463279a3724188285ea4e5cab754c9046fa4c49ba35f2d4312e6a28f2c7cd687');
CREATE TABLE measures (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    value       REAL,
    PRIMARY KEY (run_id, step, response_id, name)
) WITHOUT ROWID;
CREATE TABLE token_logprobs (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    token       INTEGER NOT NULL,
    logprob     REAL NOT NULL,
    argmax      INTEGER NOT NULL, gain_token INTEGER, gain REAL,
    PRIMARY KEY (run_id, step, response_id, position)
) WITHOUT ROWID;
CREATE TABLE samples (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    data_line  INTEGER NOT NULL,
    sample     INTEGER NOT NULL,
    prompt     TEXT NOT NULL,
    text       TEXT NOT NULL,
    reward     REAL NOT NULL,
    kl         REAL NOT NULL,
    advantage  REAL NOT NULL,
    n_tokens   INTEGER NOT NULL,
    eos        INTEGER NOT NULL,
    PRIMARY KEY (run_id, step, data_line, sample)
) WITHOUT ROWID;
CREATE TABLE run_origins (
    run_id   INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    store_id TEXT NOT NULL
);
CREATE TABLE run_jobs (
    run_id       INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    job_id       TEXT NOT NULL,
    submitted_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now'))
);
CREATE TABLE token_texts (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    token  INTEGER NOT NULL,
    text   TEXT NOT NULL,
    PRIMARY KEY (run_id, token)
) WITHOUT ROWID;
CREATE TABLE attributions (
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step        INTEGER NOT NULL,
    response_id INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    logprob     REAL NOT NULL,
    predicted   REAL NOT NULL,
    observed    REAL NOT NULL,
    PRIMARY KEY (run_id, step, response_id)
) WITHOUT ROWID;
CREATE TABLE influences (
    run_id       INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step         INTEGER NOT NULL,
    response_id  INTEGER NOT NULL REFERENCES responses(id) ON DELETE CASCADE,
    example      INTEGER NOT NULL,
    data_line    INTEGER,
    contribution REAL NOT NULL,
    cosine       REAL,
    PRIMARY KEY (run_id, step, response_id, example)
) WITHOUT ROWID;
CREATE TABLE pair_measures (
    run_id    INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step      INTEGER NOT NULL,
    example   INTEGER NOT NULL,
    data_line INTEGER NOT NULL,
    name      TEXT NOT NULL,
    value     REAL,
    PRIMARY KEY (run_id, step, example, name)
) WITHOUT ROWID;
CREATE INDEX runs_experiment ON runs(experiment_id, name);
CREATE INDEX runs_name ON runs(name);
CREATE INDEX params_key_value ON params(key, value);
CREATE INDEX responses_category ON responses(category);
CREATE VIEW category_curves AS
SELECT l.run_id AS run_id,
       l.step AS step,
       r.category AS category,
       p.split AS split,
       avg(l.logprob) AS mean_logprob,
       avg(l.logprob / nullif(l.n_tokens, 0)) AS mean_token_logprob,
       CASE WHEN count(*) > 1 THEN
           sqrt(max(0.0, (sum(l.logprob * l.logprob) - sum(l.logprob) * sum(l.logprob) / count(*))
                         / (count(*) - 1)) / count(*))
       END AS sem,
       count(*) AS n
FROM logprobs AS l
JOIN responses AS r ON r.id = l.response_id
JOIN probes AS p ON p.id = r.probe_id
GROUP BY l.run_id, l.step, r.category, p.split;
CREATE VIEW logprob_deltas AS
SELECT l.run_id AS run_id,
       l.step AS step,
       l.response_id AS response_id,
       r.probe_id AS probe_id,
       r.category AS category,
       p.split AS split,
       l.logprob AS logprob,
       s.logprob AS start_logprob,
       l.logprob - s.logprob AS delta
FROM logprobs AS l
JOIN responses AS r ON r.id = l.response_id
JOIN probes AS p ON p.id = r.probe_id
LEFT JOIN logprobs AS s ON s.run_id = l.run_id AND s.step = 0 AND s.response_id = l.response_id;
CREATE VIEW measure_curves AS
SELECT run_id, step, category, split, 'logprob' AS measure, mean_logprob AS mean, sem, n
FROM category_curves
UNION ALL
SELECT m.run_id AS run_id,
       m.step AS step,
       r.category AS category,
       p.split AS split,
       m.name AS measure,
       avg(m.value) AS mean,
       CASE WHEN count(m.value) > 1 THEN
           sqrt(max(0.0, (sum(m.value * m.value) - sum(m.value) * sum(m.value) / count(m.value))
                         / (count(m.value) - 1)) / count(m.value))
       END AS sem,
       count(m.value) AS n
FROM measures AS m
JOIN responses AS r ON r.id = m.response_id
JOIN probes AS p ON p.id = r.probe_id
GROUP BY m.run_id, m.step, r.category, p.split, m.name;
CREATE VIEW token_deltas AS
SELECT t.run_id AS run_id,
       t.step AS step,
       t.response_id AS response_id,
       r.probe_id AS probe_id,
       r.category AS category,
       p.split AS split,
       t.position AS position,
       l.n_tokens AS n_tokens,
       t.token AS token,
       t.logprob AS logprob,
       f.logprob AS first_logprob,
       t.logprob - f.logprob AS delta
FROM token_logprobs AS t
JOIN responses AS r ON r.id = t.response_id
JOIN probes AS p ON p.id = r.probe_id
JOIN logprobs AS l ON l.run_id = t.run_id AND l.step = t.step AND l.response_id = t.response_id
LEFT JOIN token_logprobs AS f
       ON f.run_id = t.run_id
      AND f.step = (SELECT min(step) FROM logprobs AS e WHERE e.run_id = t.run_id)
      AND f.response_id = t.response_id
      AND f.position = t.position;
CREATE VIEW token_text_deltas AS
SELECT d.*, tt.text AS token_text
FROM token_deltas AS d
LEFT JOIN token_texts AS tt ON tt.run_id = d.run_id AND tt.token = d.token;
COMMIT;
