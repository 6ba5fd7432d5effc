"""The reference as a static site: ``python -m sitegen`` builds it into _site/ from the claim
records and the committed results; ``--screenshots`` also refreshes the README's screenshots."""
