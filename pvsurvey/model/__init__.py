"""Pure physics and policy math over arrays and frames, no file access: the roof
model, the typical weather year, the yield table, zonal statistics, footprint
cleaning, the per-partition survey, registry matching, target metrics, candidate
projects and their economics. Imports only the config schema and the base modules."""
