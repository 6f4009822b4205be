from astrasim.cli import app

app()
