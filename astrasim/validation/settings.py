"""A validation campaign's settings: the frozen protocol's defaults (`protocol.Settings`), a
validation YAML's `validate:` block and the CLI's options, checked into one `Settings`."""

from __future__ import annotations

from pathlib import Path

from astrasim.validation.protocol import SETTINGS_KEYS, Settings


def load_settings(path: str | Path | None = None, **overrides) -> Settings:
    """Settings from an optional YAML file (under `validate:`; keys: SETTINGS_KEYS, `model` a
    mapping of ModelSpec fields), then the non-None keyword overrides (the CLI options); anything
    not given is the frozen protocol's default (`protocol.Settings`)."""
    from pydantic import ValidationError

    from astrasim.errors import UserError

    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise UserError(
                f"file '{p}' not found; give a validation YAML such as validation/validate.yaml", field="scenario"
            )
        from astrasim.fileio import read_yaml_file

        data = read_yaml_file(p, "scenario") or {}
        if not isinstance(data, dict):
            raise UserError("a validation scenario must be a mapping", field="scenario")
        data = data.get("validate", data)
        if not isinstance(data, dict):
            raise UserError("'validate' must be a mapping of settings", field="scenario")
        unknown = set(data) - set(SETTINGS_KEYS)
        if unknown:
            raise UserError(f"unknown key(s) {sorted(unknown)}; allowed: {', '.join(SETTINGS_KEYS)}", field="scenario")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings(**data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "scenario"
        raise UserError(f"{err['msg']} (got {err.get('input')!r})", field=where) from None
    settings.check()
    return settings
