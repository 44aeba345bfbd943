#!/usr/bin/env python3
"""Judge Hakoniwa's policy TOML reader against Python's tomllib (TOML 1.0.0).

Standard input: one JSON object per line, one line per document of the corpus:

    {"file": "<path>", "ours": <our tagged JSON value or null>, "error": "<message or null>"}

"Tagged JSON": a table is an object of its keys, an array is an array, and every other
value is {"type": "string" | "integer" | "bool", "value": "<text>"}; an integer's text is
its decimal form and a bool's is "true" or "false".

Each document is loaded with tomllib and judged by the folder it sits in, next to this
script:

    valid/         tomllib accepts; ours gives the same value.
    invalid/       tomllib rejects; ours gives an error.
    unsupported/   tomllib accepts and finds a float or a date/time; ours gives an error
                   saying "not supported in policies".
    out-of-range/  tomllib accepts an integer outside i64, but TOML 1.0.0 says a value
                   that cannot be kept losslessly must be an error; ours gives an error.

Every *.toml file in those folders must appear in the input exactly once.
Prints one "FAIL <file>: <why>" line per failure, then "checked N documents, F failures",
and exits 1 if there was any failure.
"""

import datetime
import json
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
FOLDERS = ("valid", "invalid", "unsupported", "out-of-range")
UNSUPPORTED_MESSAGE = "not supported in policies"
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
UNSUPPORTED = {"type": "unsupported"}


def tag(value):
    """tomllib's value in the tagged JSON form (as Python objects)."""
    if isinstance(value, dict):
        return {key: tag(item) for key, item in value.items()}
    if isinstance(value, list):
        return [tag(item) for item in value]
    if isinstance(value, str):
        return {"type": "string", "value": value}
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return {"type": "bool", "value": "true" if value else "false"}
    if isinstance(value, int):
        return {"type": "integer", "value": str(value)}
    if isinstance(value, (float, datetime.date, datetime.time)):  # datetime is a date
        return UNSUPPORTED
    raise TypeError(f"tomllib gave an unexpected {type(value).__name__}: {value!r}")


def leaves(value):
    """Every value of a loaded document that is neither a table nor an array."""
    if isinstance(value, dict):
        for item in value.values():
            yield from leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from leaves(item)
    else:
        yield value


def is_unsupported(leaf):
    return isinstance(leaf, (float, datetime.date, datetime.time))


def is_out_of_range(leaf):
    return type(leaf) is int and not I64_MIN <= leaf <= I64_MAX


def show(value):
    return json.dumps(value, sort_keys=True)  # ASCII: invisible characters show as escapes


def is_table(tagged):
    """A tagged table, as opposed to a tagged scalar (whose "type" is a string)."""
    return isinstance(tagged, dict) and not any(isinstance(v, str) for v in tagged.values())


def first_difference(expected, ours, where="document"):
    """Where the two tagged values first differ, and how, or None if they are equal."""
    if is_table(expected) and is_table(ours):
        for key in sorted(expected.keys() | ours.keys()):
            if key not in ours:
                return f"{where}: ours lacks key {show(key)}"
            if key not in expected:
                return f"{where}: ours has extra key {show(key)}"
        for key in sorted(expected):
            found = first_difference(expected[key], ours[key], f"{where}.{show(key)}")
            if found:
                return found
        return None
    if isinstance(expected, list) and isinstance(ours, list) and len(expected) == len(ours):
        for index, (left, right) in enumerate(zip(expected, ours)):
            found = first_difference(left, right, f"{where}[{index}]")
            if found:
                return found
        return None
    if expected != ours:
        return f"{where}: tomllib {show(expected)}, ours {show(ours)}"
    return None


def no_duplicate_keys(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r} in our JSON")
        obj[key] = value
    return obj


def judge(folder, path, ours, error):
    """Why this document fails, or None."""
    try:
        with open(path, "rb") as f:
            theirs, reason = tomllib.load(f), None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        theirs, reason = None, f"{type(e).__name__}: {e}"

    if ours is None and not isinstance(error, str):
        return f"ours gave neither a value nor an error message (error: {show(error)})"
    if ours is not None and error is not None:
        return f"ours gave both a value and an error: {show(ours)} / {show(error)}"
    ours_text = f"ours: {show(ours)}" if ours is not None else f"ours refused: {show(error)}"

    if folder == "invalid":
        if theirs is not None:
            return f"misfiled: tomllib accepts it: {show(tag(theirs))}"
        if ours is not None:
            return f"tomllib rejects it ({reason}) but ours accepted it: {show(ours)}"
        return None

    if theirs is None:
        return f"misfiled: tomllib rejects it ({reason}); {ours_text}"
    found = list(leaves(theirs))
    unsupported = any(is_unsupported(leaf) for leaf in found)
    out_of_range = any(is_out_of_range(leaf) for leaf in found)
    expected = tag(theirs)

    if folder == "valid":
        if unsupported or out_of_range:
            return f"misfiled: holds a float, date/time or out-of-range integer: {show(expected)}"
        if ours is None:
            return f"ours refused it: {show(error)}; tomllib: {show(expected)}"
        if ours != expected:
            return (
                f"values differ at {first_difference(expected, ours)}; "
                f"tomllib: {show(expected)}; ours: {show(ours)}"
            )
        return None

    if folder == "unsupported":
        if not unsupported or out_of_range:
            return f"misfiled: no float or date/time, or an out-of-range integer: {show(expected)}"
        if ours is not None:
            return f"ours accepted it: {show(ours)}; tomllib: {show(expected)}"
        if UNSUPPORTED_MESSAGE not in error:
            return f"ours refused it without saying {UNSUPPORTED_MESSAGE!r}: {show(error)}"
        return None

    # out-of-range
    if not out_of_range or unsupported:
        return f"misfiled: no out-of-range integer, or a float or date/time: {show(expected)}"
    if ours is not None:
        return f"ours accepted an integer outside i64: {show(ours)}; tomllib: {show(expected)}"
    return None


def main():
    expected_files = {
        path.resolve(): folder for folder in FOLDERS for path in (HERE / folder).glob("*.toml")
    }
    seen = set()
    failures = []
    checked = 0

    def fail(name, why):
        failures.append(f"FAIL {name}: {why}")

    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    # Split on "\n" only: JSON strings may hold a raw U+2028 or U+0085, which splitlines()
    # would take for line ends.
    lines = sys.stdin.buffer.read().decode("utf-8").split("\n")
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line, object_pairs_hook=no_duplicate_keys)
            file, ours, error = record["file"], record["ours"], record["error"]
        except (ValueError, TypeError, KeyError) as e:
            fail(f"<input line {number}>", f"not a manifest record ({e}): {line[:500]}")
            continue
        path = Path(file).resolve()
        name = path.relative_to(HERE).as_posix() if path.is_relative_to(HERE) else str(file)
        if path not in expected_files:
            fail(name, f"not a *.toml file in {', '.join(FOLDERS)} next to {HERE}")
            continue
        if path in seen:
            fail(name, "appears more than once in the input")
            continue
        seen.add(path)
        checked += 1
        why = judge(expected_files[path], path, ours, error)
        if why is not None:
            fail(name, why)

    for path in sorted(set(expected_files) - seen):
        fail(path.relative_to(HERE).as_posix(), "missing from the input")

    for failure in failures:
        print(failure)
    print(f"checked {checked} documents, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
