// Module Experiments: see ../shared/DESIGN.md module map.
