// Module RunStore: see ../shared/DESIGN.md module map.
