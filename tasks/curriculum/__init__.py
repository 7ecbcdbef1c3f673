"""Difficulty filtering and curriculum stage datasets (flow `filter_difficulty`)."""
