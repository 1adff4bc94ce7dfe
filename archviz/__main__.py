"""`python -m archviz`."""

from archviz.cli.main import main

main()
