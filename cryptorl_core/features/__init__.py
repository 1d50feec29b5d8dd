"""Causal technical features of the aligned market frame, fitted per segment.

Every function here maps rows ``<= t`` of its input to row ``t`` of its output, so
truncating the input never changes an earlier output row; ``cryptorl_core.lookahead``
checks that property.
"""
