"""`python -m distilkit` runs the same Typer app as the `distilkit` console script."""

from distilkit.cli import main

if __name__ == "__main__":
    main()
