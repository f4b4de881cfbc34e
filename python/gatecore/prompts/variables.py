"""A prompt's variables: a JSON Schema subset (an object of typed properties, `required`, `enum`,
`default`, string and array lengths, number ranges) checked at publish time, and a call's variables
checked against it (400 naming the variable)."""

from __future__ import annotations

from typing import Any

from gatecore.errors import InvalidRequest

TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}
MAX_VARIABLES = 64
# Schema keywords that constrain a string beyond its type (a plain string skips `_checked`).
_KEYWORDS_CHECKED = frozenset(("enum", "minLength", "maxLength"))
MAX_VALUE_CHARS = 200_000  # a string variable's bound unless the schema sets a smaller maxLength
_KEYWORDS = frozenset(
    (
        "type",
        "description",
        "enum",
        "default",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "maxItems",
        "title",
    )
)


class Variables:
    """The checked schema of a prompt's variables."""

    __slots__ = ("plain", "properties", "required", "schema")

    def __init__(self, schema: dict[str, Any] | None):
        schema = schema or {"type": "object", "properties": {}}
        if not isinstance(schema, dict) or schema.get("type", "object") != "object":
            raise _bad("'variables' must be a JSON Schema of type object.")
        properties = schema.get("properties") or {}
        if not isinstance(properties, dict) or len(properties) > MAX_VARIABLES:
            raise _bad(f"'variables.properties' must be an object of at most {MAX_VARIABLES} variables.")
        for name, prop in properties.items():
            _check_property(name, prop)
        required = schema.get("required") or []
        if not isinstance(required, list) or any(r not in properties for r in required):
            raise _bad("'variables.required' must list declared variables.")
        self.schema = schema
        self.properties: dict[str, dict[str, Any]] = properties
        self.required = frozenset(required)
        # Strings with no constraint but the length bound: checked inline (most variables).
        self.plain = frozenset(
            name
            for name, prop in properties.items()
            if prop.get("type", "string") == "string" and not _KEYWORDS_CHECKED & set(prop)
        )

    def check(self, given: Any) -> dict[str, Any]:
        """The call's variables with defaults filled in; 400 naming the first bad one."""
        if given is None:
            given = {}
        if not isinstance(given, dict):
            raise InvalidRequest(
                "'variables' must be an object.", code="invalid_variables", param="variables"
            )
        for name in given:
            if name not in self.properties:
                raise _variable(
                    name,
                    f"Unknown variable '{str(name)[:64]}'; this prompt declares "
                    f"{', '.join(sorted(self.properties))[:300] or 'none'}.",
                )
        values: dict[str, Any] = {}
        for name, prop in self.properties.items():
            value = given.get(name)
            if value is not None:
                if value.__class__ is str and len(value) <= MAX_VALUE_CHARS and name in self.plain:
                    values[name] = value
                else:
                    values[name] = _checked(name, prop, value)
            elif "default" in prop:
                values[name] = prop["default"]
            elif name in self.required:
                raise _variable(name, f"Missing required variable '{name}'.", "missing_variable")
            else:
                values[name] = None
        return values

    def sample(self) -> dict[str, Any]:
        """A value for each variable (its default, first enum value or a type's zero): what a
        template is rendered with at publish time."""
        zero = {"string": "x", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}
        out: dict[str, Any] = {}
        for name, prop in self.properties.items():
            out[name] = prop.get(
                "default", (prop.get("enum") or [zero.get(prop.get("type", "string"), "x")])[0]
            )
        return out


def _check_property(name: Any, prop: Any) -> None:
    if not isinstance(name, str) or not name.isidentifier() or len(name) > 64:
        raise _bad(f"Variable name '{str(name)[:64]}' must be an identifier of at most 64 characters.")
    if not isinstance(prop, dict):
        raise _bad(f"Variable '{name}' must be described by a schema object.")
    unknown = sorted(set(prop) - _KEYWORDS)
    if unknown:
        raise _bad(f"Variable '{name}': unsupported schema keyword '{unknown[0][:40]}'.")
    kind = prop.get("type", "string")
    if kind not in TYPES:
        raise _bad(f"Variable '{name}': type must be one of {', '.join(TYPES)}.")
    enum = prop.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum or len(enum) > 1000):
        raise _bad(f"Variable '{name}': enum must be a list of 1-1000 values.")
    if "default" in prop:
        _checked(name, prop, prop["default"], publishing=True)


def _checked(name: str, prop: dict[str, Any], value: Any, publishing: bool = False) -> Any:
    kind = prop.get("type", "string")
    wrong = not isinstance(value, TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")
    if kind == "number" and isinstance(value, float) and value != value:  # NaN is no number here
        wrong = True
    if wrong:
        raise _variable(name, f"Variable '{name}' must be of type {kind}.", publishing=publishing)
    enum = prop.get("enum")
    if enum is not None and value not in enum:
        shown = ", ".join(str(v) for v in enum)[:300]
        raise _variable(name, f"Variable '{name}' must be one of: {shown}.", publishing=publishing)
    if isinstance(value, str):
        if len(value) > min(prop.get("maxLength", MAX_VALUE_CHARS), MAX_VALUE_CHARS):
            raise _variable(name, f"Variable '{name}' is too long.", publishing=publishing)
        if len(value) < prop.get("minLength", 0):
            raise _variable(name, f"Variable '{name}' is too short.", publishing=publishing)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in prop and value < prop["minimum"]:
            raise _variable(
                name, f"Variable '{name}' must be at least {prop['minimum']}.", publishing=publishing
            )
        if "maximum" in prop and value > prop["maximum"]:
            raise _variable(
                name, f"Variable '{name}' must be at most {prop['maximum']}.", publishing=publishing
            )
    if isinstance(value, list) and len(value) > prop.get("maxItems", 1000):
        raise _variable(name, f"Variable '{name}' has too many items.", publishing=publishing)
    return value


def _bad(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_variables_schema", param="variables")


def _variable(
    name: str, message: str, code: str = "invalid_variable", publishing: bool = False
) -> InvalidRequest:
    if publishing:
        return _bad(message.replace("Variable", "The default of variable"))
    return InvalidRequest(message, code=code, param=f"variables.{str(name)[:64]}")
