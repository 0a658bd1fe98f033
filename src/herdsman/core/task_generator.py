"""TaskGenerator: a typed Python function turned into tasks that call it on the worker.

Jobmon's names and arguments (``jobmon.core.task_generator``)::

    @task_generator(serializers={}, tool_name="demo", naming_args=["region"])
    def fit(region: str, year: int, draws: list[int]) -> float:
        ...

    task = fit.create_task(compute_resources={"memory": "1G"}, region="east", year=2020,
                           draws=[1, 2])
    tasks = fit.create_tasks(region=["east", "west"], year=2020, draws=[[1, 2]])

Each parameter is a node arg of one task template named after the function. Arguments are
turned into text by their type annotations -- ``str``, ``int``, ``float``, ``bool``,
``Optional`` of one, ``list``/``tuple``/``set`` of them (a JSON list of the items' texts), or
any type given a ``(serialize, deserialize)`` pair in ``serializers``. The task's command
runs this module on the worker::

    python -m herdsman.core.task_generator --module_name M --func_name F \
        [--module_source_path P] region=east year=2020 'draws=["1", "2"]'

which imports the function (by module name, else from the module's file: a script run as
``__main__`` works too), turns each argument back into its type and calls it; a parameter
left out uses the function's default. A result other than ``None`` is printed on stdout, so
it shows in the task's output (``herdsman task status``); an exception fails the task.

The tool is made from ``tool_name`` with the ``Tool`` class the client registers here
(:func:`register_tool_factory`, done by importing ``herdsman.client.tool``), or given as
``tool``; this module imports nothing else of herdsman.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import inspect
import json
import shlex
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from herdsman.client.task import Task
    from herdsman.client.workflow import Workflow

__all__ = [
    "BUILT_IN_COLLECTIONS",
    "SIMPLE_TYPES",
    "TaskGenerator",
    "create_task_name",
    "get_optional_type_parameter",
    "get_tasks_by_node_args",
    "is_optional_type",
    "main",
    "make_cli_argument_string",
    "register_tool_factory",
    "task_generator",
]

SIMPLE_TYPES: frozenset[type] = frozenset({str, int, float, bool})
"""Types serialised without help: ``str(value)``, read back by the type (``bool`` by its
literal, so ``"False"`` is false)."""

BUILT_IN_COLLECTIONS: frozenset[type] = frozenset({list, tuple, set})
"""Collections whose items (of a simple or serialisable type) are serialised one by one."""

Serializers = Mapping[Any, tuple[Callable[[Any], Any], Callable[[Any], Any]]]
"""Type -> (to text, from text). The first may return a string or a list of strings."""

_MODULE = "herdsman.core.task_generator"
_NAME_REFUSED = "/\\'\" "  # what an explicit task name may not hold (constants.SpecialChars)
_MAX_NAME = 255
_DEFAULT = "__default__"
"""The text of an argument left out: the worker calls the function without it."""

_tool_factory: Callable[[str], Any] | None = None


def register_tool_factory(factory: Callable[[str], Any]) -> None:
    """Make tools by name with ``factory`` (``herdsman.client.tool`` registers ``Tool``)."""
    global _tool_factory
    _tool_factory = factory


class _TemplateMaker(Protocol):
    def get_task_template(
        self,
        template_name: str,
        command_template: str,
        node_args: Iterable[str] | None = None,
        task_args: Iterable[str] | None = None,
        op_args: Iterable[str] | None = None,
        default_cluster_name: str = "",
        default_compute_resources: dict[str, Any] | None = None,
        default_resource_scales: dict[str, Any] | None = None,
        yaml_file: str | None = None,
    ) -> Any: ...


# --- types ----------------------------------------------------------------------------------


def is_optional_type(obj_type: Any) -> bool:
    """Whether ``obj_type`` admits None: ``Optional[X]``, ``X | None`` or ``NoneType``."""
    if obj_type is type(None):
        return True
    origin = typing.get_origin(obj_type)
    if origin is typing.Union or origin is types.UnionType:
        return type(None) in typing.get_args(obj_type)
    return False


def get_optional_type_parameter(obj_type: Any) -> Any:
    """The ``X`` of ``Optional[X]``; TypeError when there is none."""
    for argument in typing.get_args(obj_type):
        if argument is not type(None):
            return argument
    raise TypeError(f"{obj_type!r} names no type besides None")


def _collection(obj_type: Any) -> type | None:
    if obj_type in BUILT_IN_COLLECTIONS:
        return typing.cast(type, obj_type)
    origin = typing.get_origin(obj_type)
    return typing.cast(type, origin) if origin in BUILT_IN_COLLECTIONS else None


def _item_types(obj_type: Any, count: int) -> list[Any]:
    """The type of each of ``count`` items of a collection annotated ``obj_type``."""
    arguments = typing.get_args(obj_type)
    if not arguments:
        raise TypeError(
            f"{obj_type!r} does not say what its items are; annotate it as, e.g., list[int]"
        )
    if len(arguments) == 1 or (len(arguments) == 2 and arguments[1] is Ellipsis):
        return [arguments[0]] * count
    if len(arguments) != count:
        raise TypeError(f"{obj_type!r} holds {len(arguments)} items, not {count}")
    return list(arguments)


def make_cli_argument_string(arg_value: str) -> str:
    """A serialised argument as one shell word of the task's command."""
    return shlex.quote(arg_value)


def create_task_name(
    kwargs_for_name: Mapping[str, str],
    prefix: str,
    name_func: Callable[[str, Mapping[str, str]], str] | None = None,
) -> str:
    """``prefix:arg=value:...`` (or ``name_func(prefix, kwargs_for_name)``), with what task
    names may not hold (a space, quotes, slashes) replaced by ``_``."""
    if name_func is not None:
        name = name_func(prefix, kwargs_for_name)
    else:
        name = ":".join([prefix, *(f"{key}={value}" for key, value in kwargs_for_name.items())])
    name = "".join("_" if c in _NAME_REFUSED or not c.isprintable() else c for c in name)
    if name[:1].isdigit():
        name = "_" + name
    return name[:_MAX_NAME]


# --- the generator --------------------------------------------------------------------------


class TaskGenerator:
    """Tasks that call ``task_function`` on the worker (Jobmon's arguments).

    ``serializers`` maps a type to ``(serialize, deserialize)`` for arguments of types not
    built in; ``tool_name`` names the tool whose template the tasks use (herdsman also takes
    a ``Tool`` as ``tool``); ``naming_args`` are the arguments shown in task names (default:
    all; ``[]``: none); ``max_attempts`` applies to every task; ``module_source_path`` is the
    file the worker loads the function from when its module cannot be imported there (by
    default the module's own file). ``name_func(prefix, kwargs)`` names tasks instead. The
    defaults and ``yaml_file`` go to the task template, made when the first task is.
    """

    def __init__(
        self,
        task_function: Callable[..., Any],
        serializers: Serializers | None,
        tool_name: str = "",
        naming_args: Sequence[str] | None = None,
        max_attempts: int | None = None,
        module_source_path: str | None = None,
        name_func: Callable[[str, Mapping[str, str]], str] | None = None,
        default_cluster_name: str = "",
        default_compute_resources: Mapping[str, Any] | None = None,
        default_resource_scales: Mapping[str, Any] | None = None,
        yaml_file: str | None = None,
        *,
        tool: _TemplateMaker | None = None,
    ) -> None:
        if tool is None and not tool_name:
            raise ValueError("a TaskGenerator needs a tool_name (or a tool)")
        self.task_function = task_function
        self.serializers: dict[Any, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = dict(
            serializers or {}
        )
        self.tool_name = tool_name
        self._tool = tool
        self.max_attempts = max_attempts
        self.mod_name: str = task_function.__module__
        self.name: str = task_function.__name__
        self.full_path = f"{self.mod_name}:{self.name}"
        self.module_source_path = module_source_path or _module_path(task_function)
        self.name_func = name_func
        self.signature = inspect.signature(task_function)
        hints = typing.get_type_hints(task_function)
        self.params: dict[str, Any] = {
            name: hints.get(name, inspect.Parameter.empty) for name in self.signature.parameters
        }
        self._naming_args = list(naming_args) if naming_args is not None else list(self.params)
        self._defaults: dict[str, Any] = {
            "default_cluster_name": default_cluster_name,
            "default_compute_resources": dict(default_compute_resources or {}) or None,
            "default_resource_scales": dict(default_resource_scales or {}) or None,
            "yaml_file": yaml_file,
        }
        self._task_template: Any = None
        self._validate_task_function()

    @property
    def tool(self) -> _TemplateMaker:
        """The tool of the tasks' template: the one given, else one made from ``tool_name``."""
        if self._tool is None:
            if _tool_factory is None:
                raise RuntimeError(
                    "no Tool class is registered to make tool "
                    f"{self.tool_name!r}; import herdsman.client.tool first"
                )
            self._tool = typing.cast(_TemplateMaker, _tool_factory(self.tool_name))
        return self._tool

    @property
    def task_template(self) -> Any:
        """The task template the tasks belong to, made on first use."""
        if self._task_template is None:
            words = ["{executable} -m", _MODULE, "--module_name", shlex.quote(self.mod_name)]
            words += ["--func_name", shlex.quote(self.name)]
            if self.module_source_path:
                words += ["--module_source_path", shlex.quote(self.module_source_path)]
            words += [f"{name}={{{name}}}" for name in self.params]
            self._task_template = self.tool.get_task_template(
                template_name=self.name,
                command_template=" ".join(words),
                node_args=list(self.params),
                op_args=["executable"],
                **self._defaults,
            )
        return self._task_template

    # --- checks ---------------------------------------------------------------------------------

    def _validate_task_function(self) -> None:
        missing = [name for name, hint in self.params.items() if hint is inspect.Parameter.empty]
        if missing:
            raise TypeError(
                f"cannot make tasks of {self.name}: parameters {', '.join(missing)} have no type "
                "annotation, and arguments are turned into text by their annotations"
            )
        for name, hint in self.params.items():
            kind = self.signature.parameters[name].kind
            if kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                raise TypeError(f"cannot make tasks of {self.name}: *{name} is not supported")
            if not self._is_valid_annotation(hint):
                raise TypeError(
                    f"cannot make tasks of {self.name}: parameter {name!r} is annotated "
                    f"{hint!r}, which has no serializer; annotate it with str, int, float, bool, "
                    "an Optional or a list/tuple/set of them, or give a (serialize, "
                    "deserialize) pair for the type in serializers"
                )
        for name in self._naming_args:
            if name not in self.params:
                raise ValueError(f"naming arg {name!r} is not a parameter of {self.name}")

    def _is_valid_annotation(self, annotation: Any) -> bool:
        if annotation in SIMPLE_TYPES or annotation in self.serializers:
            return True
        if is_optional_type(annotation):
            return self._is_valid_annotation(get_optional_type_parameter(annotation))
        if _collection(annotation) is not None:
            items = typing.get_args(annotation)
            return bool(items) and all(
                item is Ellipsis or item in SIMPLE_TYPES or item in self.serializers
                for item in items
            )
        return False

    # --- serialising ----------------------------------------------------------------------------

    def serialize(self, obj: Any, expected_type: Any) -> str:
        """``obj`` as text; TypeError when it is not of ``expected_type``."""
        if expected_type in self.serializers:
            return str(self.serializers[expected_type][0](obj))
        if expected_type in SIMPLE_TYPES:
            if not _is_instance(obj, expected_type):
                raise TypeError(
                    f"expected a {expected_type.__name__}, got {obj!r} ({type(obj).__name__})"
                )
            return str(obj)
        if is_optional_type(expected_type):
            if obj is None:
                return str(None)
            return self.serialize(obj, get_optional_type_parameter(expected_type))
        collection = _collection(expected_type)
        if collection is not None:
            if not isinstance(obj, collection):
                raise TypeError(f"expected a {collection.__name__}, got {obj!r}")
            given = typing.cast(Iterable[Any], obj)
            items = sorted(given, key=repr) if collection is set else list(given)
            texts = [
                self.serialize(item, item_type)
                for item, item_type in zip(
                    items, _item_types(expected_type, len(items)), strict=True
                )
            ]
            return json.dumps(texts)
        raise TypeError(
            f"no serializer for {expected_type!r}; give one in the TaskGenerator's serializers"
        )

    def deserialize(self, obj: str, obj_type: Any) -> Any:
        """The value ``serialize`` turned into ``obj``."""
        if is_optional_type(obj_type):
            if obj == str(None):
                return None
            obj_type = get_optional_type_parameter(obj_type)
        if obj_type in self.serializers:
            return self.serializers[obj_type][1](obj)
        if obj_type is bool:
            value = ast.literal_eval(obj)
            if not isinstance(value, bool):
                raise ValueError(f"{obj!r} is not True or False")
            return value
        if obj_type in SIMPLE_TYPES:
            return obj_type(obj)
        collection = _collection(obj_type)
        if collection is not None:
            texts = json.loads(obj) if obj.startswith("[") else [obj]
            item_types = _item_types(obj_type, len(texts))
            return collection(
                self.deserialize(str(text), item_type)
                for text, item_type in zip(texts, item_types, strict=True)
            )
        raise TypeError(
            f"no deserializer for {obj_type!r}; give one in the TaskGenerator's serializers"
        )

    def serialize_array(self, obj: Any, expected_type: Any) -> list[str]:
        """Each value of a list (a value that is not a list: itself) serialised."""
        values = obj if isinstance(obj, list) else [obj]
        return [self.serialize(value, expected_type) for value in values]

    def _node_args(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every parameter's text as a shell word; a parameter not given uses its default."""
        unknown = sorted(set(given) - set(self.params))
        if unknown:
            raise TypeError(f"{self.name} has no parameters {', '.join(unknown)}")
        node_args: dict[str, Any] = {}
        for name, parameter in self.signature.parameters.items():
            if name in given:
                node_args[name] = given[name]
            elif parameter.default is not inspect.Parameter.empty:
                node_args[name] = _DEFAULT
            else:
                raise TypeError(f"{self.name} needs a value for {name!r}")
        return node_args

    # --- tasks ----------------------------------------------------------------------------------

    def create_task(
        self,
        cluster_name: str = "",
        compute_resources: Mapping[str, Any] | None = None,
        resource_scales: Mapping[str, Any] | None = None,
        *,
        upstream_tasks: Iterable[Task] | None = None,
        task_attributes: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Task:
        """A task calling the function with ``kwargs`` (Jobmon's signature); herdsman also
        takes ``upstream_tasks`` and ``task_attributes`` as ``TaskTemplate.create_task``."""
        serialized = {name: self.serialize(v, self.params[name]) for name, v in kwargs.items()}
        node_args = self._node_args(
            {name: make_cli_argument_string(text) for name, text in serialized.items()}
        )
        shown = {name: text for name, text in serialized.items() if name in self._naming_args}
        task: Task = self.task_template.create_task(
            name=create_task_name(shown, self.name, self.name_func),
            cluster_name=cluster_name,
            compute_resources=dict(compute_resources) if compute_resources else None,
            resource_scales=dict(resource_scales) if resource_scales else None,
            max_attempts=self.max_attempts,
            upstream_tasks=list(upstream_tasks or ()),
            task_attributes=dict(task_attributes or {}),
            executable=shlex.quote(sys.executable),
            **node_args,
        )
        return task

    def create_tasks(
        self,
        cluster_name: str = "",
        compute_resources: Mapping[str, Any] | None = None,
        resource_scales: Mapping[str, Any] | None = None,
        *,
        upstream_tasks: Iterable[Task] | None = None,
        task_attributes: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> list[Task]:
        """Tasks for the cross product of the values given: a list means each of its values
        (so a list argument is given as a list of lists), anything else one value."""
        given = {
            name: [make_cli_argument_string(text) for text in self.serialize_array(value, hint)]
            for name, value in kwargs.items()
            if (hint := self.params.get(name, inspect.Parameter.empty))
            is not inspect.Parameter.empty
        }
        node_args = self._node_args({**kwargs, **given})
        tasks: list[Task] = self.task_template.create_tasks(
            cluster_name=cluster_name or None,
            compute_resources=dict(compute_resources) if compute_resources else None,
            resource_scales=dict(resource_scales) if resource_scales else None,
            max_attempts=self.max_attempts,
            upstream_tasks=list(upstream_tasks or ()),
            task_attributes=dict(task_attributes or {}),
            executable=shlex.quote(sys.executable),
            **node_args,
        )
        return tasks

    # --- on the worker --------------------------------------------------------------------------

    def run(self, args: Sequence[str]) -> Any:
        """Call the function with ``name=text`` arguments turned back into their types; a
        parameter given as ``__default__`` (or not at all) takes its default."""
        arguments: dict[str, Any] = {}
        for arg in args:
            name, sep, text = arg.partition("=")
            if not sep or name not in self.params:
                raise ValueError(f"{arg!r} is not NAME=VALUE for a parameter of {self.name}")
            if text == _DEFAULT:
                continue
            try:
                arguments[name] = self.deserialize(text, self.params[name])
            except Exception as error:
                raise ValueError(
                    f"cannot turn argument {name}={text!r} back into {self.params[name]!r}: {error}"
                ) from error
        return self.task_function(**arguments)

    def help(self) -> str:
        """The function's parameters with their types, and the first line of its docstring."""
        lines = [f"Command line documentation for {self.full_path}"]
        doc = inspect.getdoc(self.task_function)
        if doc:
            lines.append(doc.splitlines()[0])
        for name, hint in self.params.items():
            default = self.signature.parameters[name].default
            text = getattr(hint, "__name__", None) or str(hint)
            suffix = "" if default is inspect.Parameter.empty else f" (default {default!r})"
            lines.append(f"\t--{name} [{text}]{suffix}")
        return "\n".join(lines)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The function itself, called here."""
        return self.task_function(*args, **kwargs)


def task_generator(
    serializers: Serializers | None,
    tool_name: str = "",
    naming_args: Sequence[str] | None = None,
    max_attempts: int | None = None,
    module_source_path: str | None = None,
    default_cluster_name: str = "",
    default_compute_resources: Mapping[str, Any] | None = None,
    default_resource_scales: Mapping[str, Any] | None = None,
    yaml_file: str | None = None,
    *,
    name_func: Callable[[str, Mapping[str, str]], str] | None = None,
    tool: _TemplateMaker | None = None,
) -> Callable[[Callable[..., Any]], TaskGenerator]:
    """Decorator: the function becomes a :class:`TaskGenerator` (Jobmon's arguments)."""

    def wrap(task_function: Callable[..., Any]) -> TaskGenerator:
        return TaskGenerator(
            task_function,
            serializers,
            tool_name,
            naming_args,
            max_attempts,
            module_source_path,
            name_func,
            default_cluster_name,
            default_compute_resources,
            default_resource_scales,
            yaml_file,
            tool=tool,
        )

    return wrap


def get_tasks_by_node_args(
    workflow: Workflow,
    task_generator: TaskGenerator,
    node_args_dict: Mapping[str, Any],
    error_on_empty: bool = True,
) -> list[Task]:
    """The generator's tasks in ``workflow`` with these argument values (serialised as for
    ``create_task``); ValueError when none match and ``error_on_empty``."""
    serialized = {
        name: make_cli_argument_string(task_generator.serialize(value, task_generator.params[name]))
        for name, value in node_args_dict.items()
    }
    try:
        found = workflow.get_tasks_by_node_args(task_generator.name, **serialized)
    except ValueError:
        if error_on_empty:
            raise
        found = []
    if not found and error_on_empty:
        raise ValueError(f"no task of {task_generator.name} in the workflow has {node_args_dict}")
    return found


# --- the worker's entry point -----------------------------------------------------------------


def _is_instance(obj: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(obj, int | float) and not isinstance(obj, bool)
    if expected is int:
        return isinstance(obj, int) and not isinstance(obj, bool)
    return isinstance(obj, expected)


def _module_path(function: Callable[..., Any]) -> str:
    module = sys.modules.get(function.__module__)
    file = getattr(module, "__file__", None)
    return str(Path(file).resolve()) if file else ""


def _load_function(module_name: str, module_path: str, func_name: str) -> Any:
    module: types.ModuleType | None = None
    if module_name != "__main__":
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            if not module_path:
                raise
    if module is None:
        spec = importlib.util.spec_from_file_location("_task_generator_module", module_path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {module_path!r}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return getattr(module, func_name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one task: load the function, call it, print a result that is not None."""
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    parser.add_argument("--module_name", required=True)
    parser.add_argument("--func_name", required=True)
    parser.add_argument("--module_source_path", default="")
    parser.add_argument("args", nargs="*", metavar="NAME=VALUE")
    options = parser.parse_args(argv)
    found = _load_function(options.module_name, options.module_source_path, options.func_name)
    if not isinstance(found, TaskGenerator):
        raise TypeError(f"{options.module_name}:{options.func_name} is not a TaskGenerator")
    result = found.run(options.args)
    if result is not None:
        print(result)
    return 0


if __name__ == "__main__":
    # Run as a script this module is ``__main__``; the user's module made its generators with
    # the classes of ``herdsman.core.task_generator``, so run that module's ``main``.
    from herdsman.core.task_generator import main as imported_main

    sys.exit(imported_main())
