"""`dtask results`: the results table of a sweep, a column per parameter and metric, sortable, as text, CSV or JSON."""

from __future__ import annotations

import click
from dtask_common.export import to_json
from dtask_common.models import ParamValue
from dtask_common.results_table import ResultsTable, UnknownColumn, cell_text, csv_text, right_aligned
from dtask_common.safetext import cells, shown

from dtask_cli.context import CliContext
from dtask_cli.errors import CliError, handles_errors
from dtask_cli.output import STATE_COLOURS
from dtask_cli.params import TASK_PARAM, param_map

#: Written after the best value of a metric column.
BEST_MARK = "*"


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


@click.command("results")
@click.argument("names", nargs=-1, metavar="[NAME|ID]...")
@click.option("--tag", help="Only tasks carrying this tag.")
@click.option(
    "--param",
    "params",
    multiple=True,
    type=TASK_PARAM,
    metavar="K=V",
    help="Only tasks with this parameter value (repeatable).",
)
@click.option("--sort", metavar="COL", help="Order rows by this column (missing values last).")
@click.option("--desc", is_flag=True, help="Sort from the highest value down.")
@click.option("--cols", metavar="A,B,C", help="Show these columns, in this order (e.g. id,lr,eval_accuracy).")
@click.option("--min", "minimize", multiple=True, metavar="COL", help="Lower is better in this column (repeatable).")
@click.option("--max", "maximize", multiple=True, metavar="COL", help="Higher is better in this column (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as a JSON list of objects.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the rows as CSV.")
@click.pass_obj
@handles_errors
def results_cmd(
    ctx: CliContext,
    names: tuple[str, ...],
    tag: str | None,
    params: tuple[tuple[str, ParamValue], ...],
    sort: str | None,
    desc: bool,
    cols: str | None,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
) -> None:
    """Compare the tasks of a sweep: a row per task, a column per parameter and per result metric.

    NAME is a name prefix or matrix base name (`train` selects every train[...]); ID a task id;
    neither: every task (narrow with --tag and --param). The best value of each metric column is
    marked with *: the highest, or the lowest when the metric's name says loss, error or time
    (--min / --max override).

    \b
      dtask results train --sort eval_accuracy --desc
      dtask results --tag sweep --cols model,lr,eval_accuracy --csv > sweep.csv
    """
    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")
    if desc and not sort:
        raise click.UsageError("--desc orders by the --sort column; give --sort COL too")
    wanted = param_map(params)
    with ctx.client() as c:
        try:
            table = c.results_table(
                list(names),
                tag=tag,
                params=wanted,
                cols=_columns(cols) or None,
                sort=sort,
                desc=desc,
                minimize=minimize,
                maximize=maximize,
            )
        except UnknownColumn as exc:
            raise click.UsageError(str(exc)) from None
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if as_json:
        click.echo(to_json(table.plain_rows()))
    elif as_csv:
        click.echo(csv_text(table), nl=False)
    elif not table.rows:
        click.echo("no tasks" + (" match" if names or tag or wanted else ""), err=True)
    else:
        click.echo(render(table))


def render(table: ResultsTable) -> str:
    """Aligned columns named as --sort and --cols take them; numbers to the right, the best marked."""
    grid: list[list[str]] = []
    for row in table.rows:
        line = []
        for col in table.columns:
            text = shown(cell_text(col, row.get(col.name)))
            line.append(text + BEST_MARK if table.is_best(row, col.name) else text)
        grid.append(line)
    widths = [max([cells(c.name), *(cells(r[i]) for r in grid)]) for i, c in enumerate(table.columns)]
    right = [right_aligned(table, c) for c in table.columns]
    head = "  ".join(
        shown(c.name).rjust(w) if r else shown(c.name).ljust(w)
        for c, w, r in zip(table.columns, widths, right, strict=True)
    )
    out = [click.style(head.rstrip(), bold=True)]
    for row, line in zip(table.rows, grid, strict=True):
        parts = []
        for col, text, w, r in zip(table.columns, line, widths, right, strict=True):
            pad = " " * (w - cells(text))
            padded = pad + text if r else text + pad
            if table.is_best(row, col.name):
                padded = click.style(padded, bold=True)
            elif col.kind == "state":
                padded = click.style(padded, fg=STATE_COLOURS.get(text))
            parts.append(padded)
        out.append("  ".join(parts).rstrip())
    return "\n".join(out)


def register(group: click.Group) -> None:
    group.add_command(results_cmd)
