"""Reports written after a build: dataset inspection, spurious-feature rankings."""
