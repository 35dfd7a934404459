"""Vietnamese first when the command line is wrong or help is asked: usage errors and help screens."""
from __future__ import annotations

import sys
from typing import Any


def usage_error(exc: Any) -> None:
    """One sentence for a command line that cannot be used, and where its help is."""
    ctx = getattr(exc, "ctx", None)
    where = f" — xem/see '{ctx.command_path} --help'" if ctx is not None else ""
    message = exc.format_message().strip()
    if exc.__class__.__name__ == "NoArgsIsHelpError":  # a group without its sub-command: its help was shown
        if message:
            print(message, file=sys.stderr)
        return
    said = usage_in_vietnamese(exc)
    print(f"Lệnh chưa đúng cách dùng: {said} (usage error: {message.removesuffix('.')}){where}.", file=sys.stderr)


def usage_in_vietnamese(exc: Any) -> str:
    """What is wrong with the command line, in Vietnamese, from the kind of Typer/Click error.

    Told by class name (as NoArgsIsHelpError above): Typer keeps these classes in a private module,
    and an unknown kind gets the generic sentence rather than a failing import."""
    kinds = {c.__name__ for c in type(exc).__mro__}

    def hint() -> str:
        names = getattr(exc, "param_hint", None)
        param = getattr(exc, "param", None)
        if not names and param is not None:
            names = param.get_error_hint()
        return " / ".join(names) if isinstance(names, list | tuple) else str(names or "")

    if "MissingParameter" in kinds:
        param_type = getattr(exc, "param_type", None) or getattr(getattr(exc, "param", None), "param_type_name", "")
        return f"thiếu {'tham số' if param_type == 'argument' else 'tùy chọn'} {hint()}".rstrip()
    if "BadParameter" in kinds:
        return f"giá trị của {hint()} không hợp lệ"
    if "NoSuchOption" in kinds:
        possible = getattr(exc, "possibilities", None)
        maybe = f"; có phải là {', '.join(sorted(possible))}?" if possible else ""
        return f"không có tùy chọn {getattr(exc, 'option_name', '')}{maybe}"
    text = exc.format_message()
    if text.startswith("No such command"):
        return "không có lệnh " + text.removeprefix("No such command").strip().rstrip(".")
    if text.startswith("Got unexpected extra argument"):
        return "thừa tham số " + text.rpartition("(")[2].rstrip(").")
    return "xem giải thích tiếng Anh"


HELP_OPTION_TEXT = "hiện trợ giúp này rồi thoát (show this message and exit)"


def vietnamese_help(command: Any) -> Any:
    """Vietnamese first in every help screen: panel titles and the -h/--help line of each command."""
    from typer import rich_utils

    rich_utils.ARGUMENTS_PANEL_TITLE = "Tham số (Arguments)"
    rich_utils.OPTIONS_PANEL_TITLE = "Tùy chọn (Options)"
    rich_utils.COMMANDS_PANEL_TITLE = "Lệnh (Commands)"
    rich_utils.REQUIRED_LONG_STRING = "[bắt buộc / required]"
    rich_utils.DEFAULT_STRING = "[mặc định / default: {}]"
    rich_utils.ENVVAR_STRING = "[biến môi trường / env var: {}]"

    def walk(cmd: Any) -> None:
        make = cmd.get_help_option  # Typer builds the help option on first use, with an English text

        def get_help_option(ctx: Any, _make: Any = make) -> Any:
            found = _make(ctx)
            if found is not None:
                found.help = HELP_OPTION_TEXT
            return found

        cmd.get_help_option = get_help_option
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
    return command
