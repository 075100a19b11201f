// Module Tokenizer: see ../shared/DESIGN.md module map.
