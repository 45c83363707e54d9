"""Task-file parsing: matrix expansion, placeholders, defaults, dependencies and error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from dtask_common import taskfile
from dtask_common.models import Resources
from dtask_common.taskfile import TaskFileError

REPO = Path(__file__).resolve().parents[2]


def problems(text: str, source: str = "t.toml") -> list[str]:
    with pytest.raises(TaskFileError) as info:
        taskfile.parse(text, source)
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def test_minimal_shell_and_argv() -> None:
    specs = taskfile.parse(
        '[[task]]\nname = "a"\ncommand = "echo hi | wc -c"\n\n[[task]]\ncommand = ["python3", "-c", "print(1)"]\n'
    )
    assert specs[0].shell == "echo hi | wc -c" and specs[0].argv == ()
    assert specs[1].argv == ("python3", "-c", "print(1)") and specs[1].shell == "" and specs[1].name == ""


def test_every_field() -> None:
    [s] = taskfile.parse(
        """
[[task]]
name = "train"
command = "python train.py"
cwd = "/srv/work"
env = { SEED = 3, DEBUG = true, MODE = "fast" }
resources = { cpus = 2.5, memory_mb = 4096, gpus = 1 }
labels = { zone = "a" }
priority = 5
max_retries = 2
timeout_s = 90
depends_on = ["17"]
tags = ["sweep", "v2"]
progress = "regex"
progress_pattern = 'step (?P<step>\\d+)/(?P<total>\\d+)'
result_marker = "RESULT:"
"""
    )
    assert s.cwd == "/srv/work"
    assert dict(s.env) == {"SEED": "3", "DEBUG": "true", "MODE": "fast"}
    assert s.resources == Resources(cpus=2.5, memory_mb=4096, gpus=1)
    assert dict(s.labels) == {"zone": "a"}
    assert (s.priority, s.max_retries, s.timeout_s) == (5, 2, 90.0)
    assert s.depends_on == ("17",) and s.tags == ("sweep", "v2")
    assert s.progress == "regex" and s.result_marker == "RESULT:"


def test_matrix_is_a_cartesian_product_with_placeholders() -> None:
    specs = taskfile.parse(
        """
[[task]]
name = "train-{model}"
command = ["python", "train.py", "--lr={lr}", "--model", "{model}", "${HOME}", "{unknown}"]
cwd = "/runs/{model}"
env = { LR = "{lr}" }
[task.matrix]
model = ["a", "b"]
lr = [0.1, 0.01, 1]
"""
    )
    assert [s.name for s in specs] == [
        "train-a[model=a,lr=0.1]",
        "train-a[model=a,lr=0.01]",
        "train-a[model=a,lr=1]",
        "train-b[model=b,lr=0.1]",
        "train-b[model=b,lr=0.01]",
        "train-b[model=b,lr=1]",
    ]
    s = specs[1]
    assert s.argv == ("python", "train.py", "--lr=0.01", "--model", "a", "${HOME}", "{unknown}")
    assert s.cwd == "/runs/a" and dict(s.env) == {"LR": "0.01"}


def test_shell_braces_survive_substitution() -> None:
    [s] = taskfile.parse('[[task]]\nname = "x"\ncommand = "echo ${HOME} {\\"a\\": {n}}"\n[task.matrix]\nn = [true]\n')
    assert s.shell == 'echo ${HOME} {"a": true}'


def test_depends_on_matrix_base_name_means_every_expansion() -> None:
    specs = taskfile.parse(
        """
[[task]]
name = "prep"
command = "true"

[[task]]
name = "train"
command = "run {lr}"
depends_on = ["prep"]
[task.matrix]
lr = [1, 2]

[[task]]
name = "eval"
command = "eval {lr}"
depends_on = ["train[lr={lr}]"]
[task.matrix]
lr = [1, 2]

[[task]]
name = "report"
command = "true"
depends_on = ["train", "eval", "42"]
"""
    )
    by = {s.name: s for s in specs}
    assert by["train[lr=1]"].depends_on == ("prep",)
    assert by["eval[lr=2]"].depends_on == ("train[lr=2]",)
    assert by["report"].depends_on == ("train[lr=1]", "train[lr=2]", "eval[lr=1]", "eval[lr=2]", "42")


def test_defaults_apply_and_merge() -> None:
    specs = taskfile.parse(
        """
[defaults]
env = { A = "1", B = "2" }
resources = { cpus = 1 }
max_retries = 2
tags = ["all"]

[[task]]
name = "x"
command = "true"
env = { B = "3" }
resources = { gpus = 1 }

[[task]]
name = "y"
command = "true"
retries = 0
tags = ["own"]
"""
    )
    x, y = specs
    assert dict(x.env) == {"A": "1", "B": "3"} and x.resources == Resources(cpus=1, gpus=1)
    assert x.max_retries == 2 and x.tags == ("all",)
    assert y.max_retries == 0 and y.tags == ("own",)


def test_taskfile_dir_placeholder(tmp_path: Path) -> None:
    f = tmp_path / "jobs.toml"
    f.write_text('[[task]]\nname = "x"\ncommand = "python {taskfile_dir}/train.py"\ncwd = "{taskfile_dir}"\n')
    [s] = taskfile.load(f)
    assert s.shell == f"python {tmp_path}/train.py" and s.cwd == str(tmp_path)


def test_every_problem_is_listed_with_file_task_and_field() -> None:
    out = problems(
        """
[[task]]
name = "a"
command = "x"
depends_on = ["nope"]
colour = "red"

[[task]]
name = "b"
command = []
priority = "high"
resources = { cpus = -1, disk = 3 }

[[task]]
name = "a"
command = "y"
progress = "bogus"
""",
        "jobs.toml",
    )
    assert "jobs.toml: task 'a' (#1): unknown key 'colour'" in out[0]
    assert any(p.startswith("jobs.toml: task 'a' (#1): depends_on: no task named 'nope'") for p in out)
    assert "jobs.toml: task 'b' (#2): priority: must be an integer, got 'high'" in out
    assert any(p.startswith("jobs.toml: task 'b' (#2): resources.disk: unknown resource") for p in out)
    assert any(p.startswith("jobs.toml: task 'b' (#2): command: is empty") for p in out)
    assert any(p.startswith("jobs.toml: task 'a' (#3): progress: unknown parser 'bogus'") for p in out)
    assert any(p.startswith("jobs.toml: task 'a' (#3): name: duplicates") for p in out)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x = ", "t.toml: not valid TOML"),
        ("", "t.toml: no tasks"),
        ("[tasks]\nx = 1\n", "t.toml: unknown top-level key 'tasks'"),
        ('[[task]]\nname = "n"\n', "t.toml: task 'n' (#1): command: is missing"),
        ("[[task]]\ncommand = 5\n", "t.toml: task #1: command: must be a shell string or a list of strings"),
        ('[[task]]\ncommand = "x"\n[task.matrix]\nlr = [1]\n', "t.toml: task #1: name: is required with a matrix"),
        ('[[task]]\nname = "m"\ncommand = "x"\n[task.matrix]\nlr = []\n', "t.toml: task 'm' (#1): matrix.lr: is empty"),
        (
            '[[task]]\nname = "m"\ncommand = "x"\nretries = 1\nmax_retries = 2\n',
            "t.toml: task 'm' (#1): retries: is another spelling",
        ),
        (
            '[[task]]\nname = "m"\ncommand = "x"\nenv = { A = [1] }\n',
            "t.toml: task 'm' (#1): env.A: must be a string or a number",
        ),
        (
            '[[task]]\nname = "m"\ncommand = "x"\nmax_retries = 1000\n',
            "t.toml: task 'm' (#1): max_retries: must be an integer from 0 to 100",
        ),
        ('[defaults]\nname = "x"\n[[task]]\ncommand = "x"\n', "t.toml: defaults: unknown key 'name'"),
        (
            '[[task]]\nname = "a"\ncommand = "x"\ndepends_on = ["b"]\n[[task]]\nname = "b"\ncommand = "x"\ndepends_on = ["a"]\n',
            "depends_on: dependency cycle a -> b -> a",
        ),
        (
            '[[task]]\nname = "a"\ncommand = "x"\ndepends_on = ["a"]\n',
            "t.toml: task 'a' (#1): depends_on: a task cannot depend on itself",
        ),
    ],
)
def test_errors(text: str, expected: str) -> None:
    out = problems(text)
    assert any(expected in p for p in out), out


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskFileError, match="no such task file"):
        taskfile.load(tmp_path / "none.toml")


@pytest.mark.parametrize("name", ["sweep.toml", "gpu.toml", "chain.toml"])
def test_examples_parse(name: str) -> None:
    specs = taskfile.load(REPO / "examples" / name)
    assert specs and all(not s.errors() for s in specs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[task]]\nname = "a"\ncommand = "x"\nprogrss = "tqdm"\n',
            "t.toml: task 'a' (#1): unknown key 'progrss' (did you mean 'progress'?)",
        ),
        ('[[task]]\nname = "a"\ncomand = "x"\n', "unknown key 'comand' (did you mean 'command'?)"),
        (
            '[[task]]\nname = "a"\ncommand = "x"\nresources = { gpu = 1 }\n',
            "resources.gpu: unknown resource (did you mean 'gpus'?)",
        ),
        ('[[tasks]]\nname = "a"\ncommand = "x"\n', "unknown top-level key 'tasks' (did you mean 'task'?)"),
        (
            '[[task]]\nname = "a"\ncommand = "x"\ndepends_on = ["aa"]\n[[task]]\nname = "b"\ncommand = "x"\n',
            "depends_on: no task named 'aa' in this file (did you mean 'a'?)",
        ),
        ('name = "a"\ncommand = "x"\n', "t.toml: name, command outside a task: put a [[task]] line above name = ..."),
        (
            '[[task]]\nname = "m"\ncommand = "x {lr}"\n[task.matrix]\nlr = 0.1\n',
            "matrix.lr: must be a list of values, got 0.1; write lr = [0.1]",
        ),
        (
            '[[task]]\nname = "a"\ncommand = "x"\ngpu = 1\n',
            "unknown key 'gpu' (did you mean resources.gpus? e.g. resources = { gpus = 1 })",
        ),
        (
            '[[task]]\nname = "a"\ncommand = "x"\ntimeout_s = "2h"\n',
            "timeout_s: must be a number of seconds, e.g. timeout_s = 7200 for 2 hours, got '2h'",
        ),
    ],
)
def test_mistakes_name_the_fix(text: str, expected: str) -> None:
    out = problems(text)
    assert any(expected in p for p in out), out


def test_far_off_key_lists_the_allowed_ones() -> None:
    [line] = problems('[[task]]\nname = "a"\ncommand = "x"\nzzz = 1\n')
    assert "unknown key 'zzz'; allowed: name, command," in line and "did you mean" not in line


def test_unknown_default_key_is_reported_once() -> None:
    out = problems(
        '[defaults]\nmax_retires = 1\n[[task]]\nname = "a"\ncommand = "x"\n[[task]]\nname = "b"\ncommand = "x"\n'
    )
    assert out == ["t.toml: defaults: unknown key 'max_retires' (did you mean 'max_retries'?)"]


def test_unreadable_files(tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[[task]]\nname = "x"\ncommand = "echo caf\xe9"\n')
    with pytest.raises(TaskFileError) as info:
        taskfile.load(latin1)
    assert info.value.problems == [f"{latin1}: line 3: byte 0xe9 is not UTF-8; save the file as UTF-8"]
    with pytest.raises(TaskFileError) as info:
        taskfile.load(tmp_path)
    assert info.value.problems == [f"{tmp_path}: is a directory; give a .toml task file"]


def test_readme_task_file_parses_as_documented() -> None:
    import re

    readme = (REPO / "README.md").read_text()
    block = re.search(r"```toml\n(.*?)```", readme.split("## Task files", 1)[1], re.S)
    assert block is not None
    specs = taskfile.parse(block.group(1), "readme.toml")
    assert len(specs) == 8 and specs[-1].name == "report"
    assert len(specs[-1].depends_on) == 6  # "train" means every expansion of the 2 x 3 sweep


def test_a_matrix_entry_error_is_reported_once_for_the_entry() -> None:
    text = (
        '[[task]]\nname = "train"\ncommand = "python train.py --lr {lr} --seed {seed}"\npriority = "high"\n'
        'depends_on = ["prep"]\n[task.matrix]\nlr = [0.1, 0.01, 0.001]\nseed = [1, 2]\n'
        '[[task]]\nname = "one"\ncommand = "true"\npriority = "x"\n'
    )
    with pytest.raises(TaskFileError) as info:
        taskfile.parse(text, "f.toml")
    assert info.value.problems == [
        "f.toml: task 'train' (#1, all 6 of its matrix tasks): depends_on: no task named 'prep' in this file "
        "(give a task name from this file or the id of a queued task)",
        "f.toml: task 'train' (#1, all 6 of its matrix tasks): priority: must be an integer, got 'high'",
        "f.toml: task 'one' (#2): priority: must be an integer, got 'x'",
    ]


def test_an_error_of_some_expansions_says_how_many() -> None:
    text = '[[task]]\nname = "t"\ncommand = ["{x}", "{y}"]\n[task.matrix]\nx = ["ok", ""]\ny = [1, 2]\n'
    with pytest.raises(TaskFileError) as info:
        taskfile.parse(text, "f.toml")
    assert info.value.problems == [
        "f.toml: task 't' (#1, 2 of its 4 matrix tasks): command[0]: the program name is empty"
    ]
