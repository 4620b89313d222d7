"""Translation metrics (sacreBLEU) and translate-and-score."""
