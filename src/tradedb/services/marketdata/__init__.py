"""The market-data service: resampling, coverage and gaps of stored candles."""
