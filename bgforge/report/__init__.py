"""Reports: dataset inspection and spurious-feature rankings after a build; per-class box statistics of a source."""
