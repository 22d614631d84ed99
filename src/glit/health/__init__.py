"""Supernet health: a stratified ground-truth sample (``glit truth``) and how well a supernet ranks it
(``glit rank``). Plain Python and scipy; the recipes that train and score live in ``glit.recipes``."""
