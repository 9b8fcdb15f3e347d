"""Rendering of a console.tokens.TokenReport: badge, diagnosis, times, header, claims, providers,
and the UserIdentity Convex would build. Pure functions returning Rich renderables, plus a Static
that shows them (the Auth screen's right pane)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.highlighter import JSONHighlighter
from rich.text import Text
from textual.widgets import Static

from console import tokens as T

_JSON = JSONHighlighter()
_MARKS = {T.ERROR: ("✗", "bold red"), T.WARNING: ("!", "bold yellow"), T.INFO: ("i", "cyan")}
_BADGES = {
    T.STATUS_VALID: ("VALID", "bold black on green"),
    T.STATUS_EXPIRED: ("EXPIRED", "bold white on red"),
    T.STATUS_NOT_YET_VALID: ("NOT YET VALID", "bold black on yellow"),
}


@dataclass
class ReportContext:
    """What the screen knows besides the report."""

    providers_note: str = ""  # "" when providers were listed, else why not (shown in the Providers section)
    key_description: str = ""  # where the verification key comes from
    in_use: bool = False  # this token is the app's bearer token
    acting: bool = False  # this token's identity is the app's acting identity
    verifying: bool = False


def _heading(title: str) -> Text:
    return Text(title, style="bold underline")


def _json_text(value: Any, indent: str = "  ") -> Text:
    body = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    text = Text("\n".join(indent + line for line in body.splitlines()))
    _JSON.highlight(text)
    return text


def problem_line(problem: T.Problem, indent: str = "  ") -> Text:
    mark, style = _MARKS.get(problem.severity, ("-", ""))
    return Text.assemble(indent, (mark, style), " ", problem.message)


def badge(report: T.TokenReport, now: float) -> Text:
    """` VALID  expires in 23 min` / ` EXPIRED  expired 3 s ago — still accepted by ...`."""
    if report.decoded is None:
        return Text.assemble((" INVALID ", "bold white on red"), "  cannot decode: ", report.decode_error.message)
    label, style = _BADGES.get(report.status or "", ("?", "reverse"))
    text = Text.assemble((f" {label} ", style))
    exp = next((claim for claim in report.times if claim.name == "exp"), None)
    nbf = next((claim for claim in report.times if claim.name == "nbf"), None)
    if report.status == T.STATUS_NOT_YET_VALID and nbf is not None:
        text.append(f"  {nbf.relative}")
    elif exp is not None:
        text.append(f"  {exp.relative}")
    else:
        text.append("  no exp claim (Convex requires one)", style="yellow")
    note = T.leeway_note(_all_problems(report))
    if note and report.status != T.STATUS_VALID:
        text.append(f" — {note.split('— ', 1)[-1]}" if "— " in note else f" — {note}", style="yellow")
    return text


def _all_problems(report: T.TokenReport) -> list[T.Problem]:
    found = list(report.problems)
    if report.match is not None and report.match.chosen is not None:
        found += report.match.chosen.problems
    return found


def verdict(report: T.TokenReport, context: ReportContext) -> Text:
    """One line: would the connected deployment accept it?"""
    if report.decoded is None:
        return Text("✗ Convex would refuse it: it is not a decodable JWT.", style="bold red")
    match = report.match
    if match is None:
        note = context.providers_note or "the deployment's providers are not known"
        return Text(f"? Provider match unknown: {note}.", style="yellow")
    if match.accepted:
        return Text.assemble((" ACCEPTED ", "bold black on green"), " ", (match.summary, "green"))
    return Text.assemble((" REJECTED ", "bold white on red"), " ", (match.summary, "red"))


def signature_line(report: T.TokenReport, context: ReportContext) -> Text:
    result = report.verification
    if context.verifying:
        return Text("… verifying the signature", style="cyan")
    if result is None:
        return Text("Signature not checked yet — ctrl+r verifies", style="dim")
    if result.ok:
        kid = f" kid '{result.kid}'" if result.kid else ""
        return Text(f"✓ Signature OK ({result.algorithm}{kid}; key from {result.source})", style="bold green")
    error = result.error
    reason = error.message if error else "not verified"
    return Text.assemble(("✗ Signature NOT verified: ", "bold red"), reason, (f"  (key from {result.source})", "dim"))


def diagnosis(report: T.TokenReport) -> list[Text]:
    """Every error and warning, most important first, without repeating the verdict."""
    seen: set[str] = set()
    lines: list[Text] = []
    problems = list(report.problems)
    if report.verification is not None:
        problems += report.verification.problems
    if report.match is not None and report.match.chosen is not None:
        problems += report.match.chosen.problems
    elif report.match is not None:  # no provider selected: why each one passed it by
        for check in report.match.checks:
            problems += [T.Problem(p.code, f"#{check.index + 1}: {p.message}", p.severity) for p in check.selection]
    for severity in (T.ERROR, T.WARNING, T.INFO):
        for problem in problems:
            if problem.severity == severity and problem.message not in seen:
                seen.add(problem.message)
                lines.append(problem_line(problem))
    return lines


def times_table(report: T.TokenReport) -> list[Text]:
    lines = []
    for claim in report.times:
        lines.append(Text.assemble(
            f"  {claim.name:<4} ", (f"{claim.utc:%Y-%m-%d %H:%M:%S} UTC", "bold"),
            f"   local {claim.local:%Y-%m-%d %H:%M:%S %Z}   ", (claim.relative, "cyan"),
        ))
    return lines


def provider_lines(report: T.TokenReport, context: ReportContext) -> list[Text]:
    match = report.match
    if match is None:
        return [Text(f"  {context.providers_note or 'not listed yet'}", style="dim")]
    if not match.checks:
        return [Text("  This deployment has no auth providers (auth.config has none): every token gets 401 "
                     "NoAuthProvider.", style="yellow")]
    lines = []
    for check in match.checks:
        if check.accepted:
            state, style = "would accept it", "green"
        elif check.selected:
            state, style = "matches iss/aud, then rejects it", "red"
        else:
            state, style = "not selected", "dim"
        chosen = match.chosen is check
        lines.append(Text.assemble(
            ("→ " if chosen else "  "), (f"#{check.index + 1} ", "bold"), check.provider.label, "  ", (state, style)))
    return lines  # the reasons are in the Diagnosis section


def render_report(report: T.TokenReport | None, now: float, context: ReportContext) -> RenderableType:
    if report is None or not report.raw.strip():
        return Text(
            "Paste a token into the box (your terminal's paste: ctrl+shift+v / cmd+v), or\n"
            "  ctrl+l  read it from the clipboard    ctrl+f  read it from a file\n"
            "  f2      pick one from this deployment's history    f3  the token in use\n"
            "Then ctrl+r verifies the signature; ctrl+t uses it for function calls; ctrl+g acts as its user.",
            style="dim",
        )
    parts: list[RenderableType] = [badge(report, now), verdict(report, context)]
    if report.decoded is None:
        error = report.decode_error
        parts += [Text(f"  ({error.code}, {len(report.raw.strip())} characters: {T.mask_token(report.raw.strip())})",
                       style="dim")]
        return Group(*parts)
    parts.append(signature_line(report, context))
    if context.in_use:
        parts.append(Text("● In use for function calls (Authorization: Bearer)", style="bold cyan"))
    if context.acting:
        parts.append(Text("● Its identity is the console's \"act as user\" identity", style="bold cyan"))
    found = diagnosis(report)
    if found:
        parts += [Text(""), _heading("Diagnosis")] + found
    if report.times:
        parts += [Text(""), _heading("Times")] + times_table(report)
    parts += [Text(""), _heading("Header"), _json_text(report.decoded.header)]
    parts += [Text(""), _heading("Claims"), _json_text(report.decoded.claims)]
    parts += [Text(""), _heading("Providers of this deployment")] + provider_lines(report, context)
    if context.key_description:
        parts.append(Text(f"  Verification key: {context.key_description}", style="dim"))
    if report.identity is not None:
        parts += [Text(""), _heading(f"UserIdentity Convex would build ({report.identity_kind})"),
                  _json_text(report.identity)]
    return Group(*parts)


class TokenReportView(Static):
    """The report pane; `show(report, now, context)` re-renders."""

    shown: RenderableType = ""

    def show(self, report: T.TokenReport | None, now: float, context: ReportContext) -> None:
        self.shown = render_report(report, now, context)
        self.update(self.shown)
