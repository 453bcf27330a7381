"""Vectra Guard's OCI seccomp profiles compiled to classic BPF, for isolation `lite`.

At isolation `container` Podman reads profiles/seccomp/*.json (containers/
common's format: `archMap`, `includes`/`excludes`) into the OCI spec, and runc
hands it to libseccomp. At `lite` there is no OCI runtime, so this module does
both steps and returns the program runc would load: an array of 8-byte
`struct sock_filter` {u16 code; u8 jt; u8 jf; u32 k} in host byte order, the
format of libseccomp's seccomp_export_bpf(), of prctl(PR_SET_SECCOMP,
SECCOMP_MODE_FILTER) and of `bwrap --seccomp FD`.

The semantics copied, from containers/common pkg/seccomp (Podman 4.3) and
runc 1.1 libcontainer/seccomp (this host's Podman runs runc 1.1.5):
  * `archMap`: the entry whose architecture is the host's gives the filter's
    architectures (x86_64 here: SCMP_ARCH_X86_64 + SCMP_ARCH_X86); a plain
    `architectures` list is taken as is. A syscall from an architecture not
    listed (x32 on x86_64 for the shipped profiles) meets libseccomp's
    bad-architecture action, which runc leaves at its default: kill the thread.
  * `includes`/`excludes`: `arches` compare with the host's Go name (amd64,
    arm64...); `caps` with the sandbox's bounding set, which is empty at
    `lite` (every capability dropped): a rule that includes a capability is
    left out, a rule that excludes one is kept.
  * actions: ERRNO and TRACE take `errnoRet`, EPERM when absent; a rule whose
    action equals the default action is skipped (runc: "redundant"); a name
    libseccomp does not know on this host is skipped (runc logs it) and listed
    in Compiled.skipped; several conditions on one argument index make one
    rule per condition (OR), else the conditions are AND-ed.
  * runc's -ENOSYS stub (libcontainer/seccomp/patchbpf) is prepended when the
    default action is not ALLOW/LOG/TRACE: for each listed architecture, a
    syscall numbered above the largest one the profile names on it answers
    ENOSYS, so that programs fall back from calls newer than the profile.
  * libseccomp's binary-tree optimisation when there are more than 32 rules.
Anything else (an unknown key, action, operator, architecture, errno name, a
`flags` entry that cannot live in the BPF itself) raises ValueError naming
it: no silently weaker filter.

Binding: pyseccomp 0.1.2 (PyPI, ctypes over libseccomp.so.2), chosen by
measurement on this host (Debian 12, libseccomp 2.5.4, Python 3.11; import in a
fresh process and compile of strict.json, best of 5): pyseccomp imports in
22-33 ms (ctypes.util.find_library runs ldconfig) and compiles in 13-18 ms;
Debian's python3-seccomp (Cython) imports in 0.4 ms and compiles in 12 ms. The
976 instructions are byte-identical. python3-seccomp lives in
/usr/lib/python3/dist-packages, which the /opt/vectraguard venv
(include-system-site-packages = false) cannot see: using it means opening the
venv to every system package or a sys.path hack, and tying Vectra Guard to the
system Python's ABI. The cost of pyseccomp is paid on a cache miss only
(cached_bpf: a hit takes 0.2-0.4 ms and imports no binding), so the pip-pinned
binding wins. It is imported inside the functions that need it: this module is
not on a run's start-up path otherwise.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import json
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

# cached_bpf (a compiled profile kept on disk) is seccomp_cache.py's, which
# imports this module only to compile; re-exported here.
from vectraguard.lite.seccomp_cache import COMPILER_REVISION, cached_bpf  # noqa: F401

# Kernel return values (include/uapi/linux/seccomp.h), equal to libseccomp's.
_RET_ERRNO = 0x0005_0000
_RET_TRACE = 0x7FF0_0000
_PLAIN_ACTIONS = {
    "SCMP_ACT_KILL": 0x0000_0000,  # runc: kill the thread
    "SCMP_ACT_KILL_THREAD": 0x0000_0000,
    "SCMP_ACT_KILL_PROCESS": 0x8000_0000,
    "SCMP_ACT_TRAP": 0x0003_0000,
    "SCMP_ACT_LOG": 0x7FFC_0000,
    "SCMP_ACT_ALLOW": 0x7FFF_0000,
}
_DATA_ACTIONS = {"SCMP_ACT_ERRNO": _RET_ERRNO, "SCMP_ACT_TRACE": _RET_TRACE}
_ALLOW_LIKE = {"SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE"}  # runc: no -ENOSYS stub
_MAX_ERRNO = 4095

# enum scmp_compare (seccomp.h)
_OPS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
        "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}

# SCMP_ARCH_* name: the Go name libseccomp-golang gives it (includes.arches).
_ARCHES = {
    "SCMP_ARCH_X86": "x86", "SCMP_ARCH_X86_64": "amd64", "SCMP_ARCH_X32": "x32",
    "SCMP_ARCH_ARM": "arm", "SCMP_ARCH_AARCH64": "arm64",
    "SCMP_ARCH_MIPS": "mips", "SCMP_ARCH_MIPS64": "mips64", "SCMP_ARCH_MIPS64N32": "mips64n32",
    "SCMP_ARCH_MIPSEL": "mipsel", "SCMP_ARCH_MIPSEL64": "mipsel64",
    "SCMP_ARCH_MIPSEL64N32": "mipsel64n32", "SCMP_ARCH_PPC": "ppc", "SCMP_ARCH_PPC64": "ppc64",
    "SCMP_ARCH_PPC64LE": "ppc64le", "SCMP_ARCH_RISCV64": "riscv64",
}
# containers/common honours `archMap` only on these hosts.
_ARCHMAP_HOSTS = {"SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64", "SCMP_ARCH_MIPS64",
                  "SCMP_ARCH_MIPS64N32", "SCMP_ARCH_MIPSEL64", "SCMP_ARCH_MIPSEL64N32"}
_X32_BIT = 0x4000_0000
_BPF_MAXINSNS = 4096

_PROFILE_KEYS = {"defaultAction", "defaultErrnoRet", "defaultErrno", "architectures",
                 "archMap", "syscalls", "flags"}
_RULE_KEYS = {"name", "names", "action", "args", "comment", "includes", "excludes",
              "errnoRet", "errno"}
_ARG_KEYS = {"index", "value", "valueTwo", "op"}
_FILTER_KEYS = {"arches", "caps"}


@dataclass(frozen=True)
class Compiled:
    """A compiled profile. `bpf`: the program (len a multiple of 8);
    `skipped`: syscall names libseccomp does not know on this host, sorted;
    `architectures`: the SCMP_ARCH_* names the filter admits."""

    bpf: bytes
    skipped: tuple[str, ...]
    architectures: tuple[str, ...]


@dataclass(frozen=True)
class _Cond:
    index: int
    op: int
    value: int
    value_two: int


@dataclass(frozen=True)
class _Rule:
    name: str
    action: int
    conds: tuple[_Cond, ...]


@dataclass(frozen=True)
class _Plan:
    """The profile as runc sees it on this host (after Podman's conversion)."""

    default: int
    stub: bool  # prepend runc's -ENOSYS stub
    arches: tuple[str, ...]
    rules: tuple[_Rule, ...]  # one per syscall name, in profile order


def compile_profile(path: str) -> bytes:
    """The classic BPF program for the OCI seccomp profile at `path`.

    Raises OSError when the file cannot be read and ValueError when it is not
    a profile this module fully understands (see the module docstring)."""
    return compile_report(path).bpf


def compile_report(path: str) -> Compiled:
    """compile_profile(), with the skipped syscall names and architectures."""
    return _compile(Path(path).read_bytes(), path)


@functools.cache
def libseccomp_version() -> str:
    """libseccomp's version, "major.minor.micro", from seccomp_version()."""
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    major, minor, micro = lib.seccomp_version().contents
    return f"{major}.{minor}.{micro}"


def _binding() -> ModuleType:
    import pyseccomp  # lazy: see the module docstring

    module: ModuleType = pyseccomp
    return module


# --- reading the profile (pure) ---------------------------------------------

def _compile(data: bytes, origin: str) -> Compiled:
    sc = _binding()
    native = _native_arch(sc)
    try:
        plan = _plan(json.loads(data), native)
    except ValueError as err:
        raise ValueError(f"seccomp profile {origin}: {err}") from None
    program, skipped = _export(sc, plan, origin)
    stub = _enosys_stub(sc, plan) if plan.stub else b""
    bpf = stub + program
    if len(bpf) // 8 > _BPF_MAXINSNS:
        raise ValueError(f"seccomp profile {origin}: {len(bpf) // 8} BPF instructions, "
                         f"more than the kernel's {_BPF_MAXINSNS}")
    return Compiled(bpf, skipped, plan.arches)


def _plan(profile: Any, native: str) -> _Plan:
    """What runc gets from Podman for `profile` on a `native` (SCMP_ARCH_*) host."""
    _check_keys(profile, _PROFILE_KEYS, "profile")
    if profile.get("flags"):
        raise ValueError(f"flags {profile['flags']!r}: not expressible in a BPF program")
    default_name = profile.get("defaultAction")
    default = _action(default_name, profile.get("defaultErrnoRet"), profile.get("defaultErrno"),
                      "defaultAction")
    rules: list[_Rule] = []
    syscalls = profile.get("syscalls") or []
    _check_list(syscalls, "syscalls")
    for i, call in enumerate(syscalls):
        rules += _rules(call, native, f"syscalls[{i}]")
    return _Plan(default, default_name not in _ALLOW_LIKE, _architectures(profile, native),
                 tuple(rules))


def _architectures(profile: dict[str, Any], native: str) -> tuple[str, ...]:
    listed = profile.get("architectures") or []
    arch_map = profile.get("archMap") or []
    _check_list(listed, "architectures")
    _check_list(arch_map, "archMap")
    if listed and arch_map:
        raise ValueError("both 'architectures' and 'archMap'")
    for name in listed:
        _known_arch(name, "architectures")
    arches = list(listed)
    for i, entry in enumerate(arch_map):
        where = f"archMap[{i}]"
        _check_keys(entry, {"architecture", "subArchitectures"}, where)
        subs = entry.get("subArchitectures") or []
        _check_list(subs, f"{where}.subArchitectures")
        for name in [entry.get("architecture"), *subs]:
            _known_arch(name, where)
        if native in _ARCHMAP_HOSTS and entry["architecture"] == native and not arches:
            arches = [entry["architecture"], *subs]
    return tuple(arches)


def _rules(call: Any, native: str, where: str) -> list[_Rule]:
    _check_keys(call, _RULE_KEYS, where)
    if not _applies(call, _ARCHES[native], where):
        return []
    name, names = call.get("name"), call.get("names") or []
    _check_list(names, f"{where}.names")
    if name and names:
        raise ValueError(f"{where}: both 'name' and 'names'")
    names = [name] if name else names
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{where}.names: expected syscall names")
    action = _action(call.get("action"), call.get("errnoRet"), call.get("errno"), f"{where}.action")
    args = call.get("args") or []
    _check_list(args, f"{where}.args")
    conds = tuple(_cond(arg, f"{where}.args[{i}]") for i, arg in enumerate(args))
    return [_Rule(n, action, conds) for n in names]


def _applies(call: dict[str, Any], go_arch: str, where: str) -> bool:
    """containers/common's includes/excludes, with no capabilities at all."""
    includes, excludes = call.get("includes") or {}, call.get("excludes") or {}
    for key, block in (("includes", includes), ("excludes", excludes)):
        _check_keys(block, _FILTER_KEYS, f"{where}.{key}")
        for field in _FILTER_KEYS:
            _check_list(block.get(field) or [], f"{where}.{key}.{field}")
    if go_arch in (excludes.get("arches") or []):
        return False
    if includes.get("arches") and go_arch not in includes["arches"]:
        return False
    return not includes.get("caps")  # the bounding set is empty: no included cap is there


def _action(name: Any, errno_ret: Any, errno_name: Any, where: str) -> int:
    if name in _PLAIN_ACTIONS:
        if errno_ret is not None or errno_name is not None:
            raise ValueError(f"{where}: errno given for {name}")
        return _PLAIN_ACTIONS[name]
    if name not in _DATA_ACTIONS:
        raise ValueError(f"{where}: unknown action {name!r}")
    if errno_name is not None:
        # Podman 4.3 reads only the number: a name alone would mean EPERM.
        if errno_ret is None or getattr(errno, str(errno_name), None) != errno_ret:
            raise ValueError(f"{where}: errno {errno_name!r} does not match errnoRet {errno_ret!r}")
    value = errno.EPERM if errno_ret is None else errno_ret
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_ERRNO:
        raise ValueError(f"{where}: errnoRet {errno_ret!r} is not an errno number")
    return _DATA_ACTIONS[name] | value


def _cond(arg: Any, where: str) -> _Cond:
    _check_keys(arg, _ARG_KEYS, where)
    op = arg.get("op")
    if op not in _OPS:
        raise ValueError(f"{where}: unknown op {op!r}")
    index, value, value_two = arg.get("index"), arg.get("value", 0), arg.get("valueTwo", 0)
    if not _is_uint(index, 5):
        raise ValueError(f"{where}.index: {index!r} is not an argument index (0-5)")
    for key, number in (("value", value), ("valueTwo", value_two)):
        if not _is_uint(number, 2**64 - 1):
            raise ValueError(f"{where}.{key}: {number!r} is not a 64-bit unsigned number")
    return _Cond(index, _OPS[op], value, value_two)


def _is_uint(value: Any, top: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top


def _known_arch(name: Any, where: str) -> None:
    if name not in _ARCHES:
        raise ValueError(f"{where}: unknown architecture {name!r}")


def _check_keys(value: Any, allowed: set[str], where: str) -> None:
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object")
    if unknown := sorted(set(value) - allowed):
        raise ValueError(f"{where}: unknown field {unknown[0]!r}")


def _check_list(value: Any, where: str) -> None:
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list")


# --- libseccomp ---------------------------------------------------------------

def _native_arch(sc: ModuleType) -> str:
    token = int(sc.system_arch()) & 0xFFFF_FFFF  # python3-seccomp: signed
    for name in _ARCHES:
        if _arch_token(sc, name) & 0xFFFF_FFFF == token:
            return name
    raise ValueError(f"host architecture {token:#x} is not supported")


def _arch_token(sc: ModuleType, name: str) -> int:
    return int(getattr(sc.Arch, name.removeprefix("SCMP_ARCH_")))


def _resolve(sc: ModuleType, arch: int, name: str) -> int:
    """The syscall number of `name` on `arch`, libseccomp's negative
    pseudo-number if it exists elsewhere only, -1 if libseccomp does not know it."""
    try:
        return int(sc.resolve_syscall(arch, name))
    except ValueError:  # python3-seccomp raises where pyseccomp returns -1
        return -1


def _export(sc: ModuleType, plan: _Plan, origin: str) -> tuple[bytes, tuple[str, ...]]:
    flt = sc.SyscallFilter(plan.default)
    for arch in plan.arches:
        token = _arch_token(sc, arch)
        if not flt.exist_arch(token):
            flt.add_arch(token)
    if len(plan.rules) > 32:  # as runc: libseccomp's binary tree
        flt.set_attr(sc.Attr.CTL_OPTIMIZE, 2)
    skipped: set[str] = set()
    for rule in plan.rules:
        if rule.action == plan.default:
            continue  # redundant, as runc skips it
        number = _resolve(sc, sc.Arch.NATIVE, rule.name)
        if number == -1:
            skipped.add(rule.name)
            continue
        for conds in _alternatives(rule.conds):
            args = [sc.Arg(c.index, c.op, c.value, c.value_two) for c in conds]
            try:
                flt.add_rule(rule.action, number, *args)
            except OSError as err:
                raise ValueError(f"seccomp profile {origin}: libseccomp refused the rule "
                                 f"for {rule.name}: {err.strerror}") from None
    with tempfile.TemporaryFile() as out:
        flt.export_bpf(out)
        out.seek(0)
        program = out.read()
    if not program or len(program) % 8:
        raise ValueError(f"seccomp profile {origin}: libseccomp exported {len(program)} bytes")
    return program, tuple(sorted(skipped))


def _alternatives(conds: tuple[_Cond, ...]) -> list[tuple[_Cond, ...]]:
    """runc: conditions on distinct arguments are one rule (AND); if one
    argument index repeats, each condition becomes a rule of its own (OR)."""
    indexes = [c.index for c in conds]
    if len(set(indexes)) < len(indexes):
        return [(c,) for c in conds]
    return [conds]


# --- runc's -ENOSYS stub --------------------------------------------------------

_LD_W_ABS, _JEQ, _JGT, _JSET, _JA, _RET_K = 0x20, 0x15, 0x25, 0x45, 0x05, 0x06
_Insn = tuple[int, "int | str", "int | str", "int | str"]  # code, jt, jf, k; str: a label


def _enosys_stub(sc: ModuleType, plan: _Plan) -> bytes:
    """runc's patchbpf stub: per architecture, ENOSYS above the largest
    syscall number the profile names (every rule counts, redundant ones too).
    Falls through to libseccomp's program, which follows it."""
    names = {rule.name for rule in plan.rules}
    largest: dict[int, dict[str, int]] = {}  # AUDIT_ARCH: {SCMP name: number}
    for arch in plan.arches:
        token = _arch_token(sc, arch)
        top = max((_resolve(sc, token, n) for n in names), default=0)
        if top > 0:
            audit = _arch_token(sc, "SCMP_ARCH_X86_64" if arch == "SCMP_ARCH_X32" else arch)
            audit &= 0xFFFF_FFFF  # python3-seccomp's tokens are signed
            largest.setdefault(audit, {})[arch] = top
    if not largest:
        return b""
    if any(arch in ("SCMP_ARCH_S390", "SCMP_ARCH_S390X") for arch in plan.arches):
        raise ValueError("s390's -ENOSYS stub is not implemented")
    code: list[_Insn] = [(_LD_W_ABS, 0, 0, 4)]
    code += [(_JEQ, f"arch{audit}", 0, audit) for audit in largest]
    code.append((_JA, 0, 0, "filter"))
    labels: dict[str, int] = {}
    for audit, tops in largest.items():
        labels[f"arch{audit}"] = len(code)
        code.append((_LD_W_ABS, 0, 0, 0))
        code += _section(tops, audit)
    labels["enosys"] = len(code)
    code.append((_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS))
    labels["filter"] = len(code)
    return b"".join(_assemble(pc, insn, labels) for pc, insn in enumerate(code))


def _section(tops: dict[str, int], audit: int) -> list[_Insn]:
    x64, x32 = tops.get("SCMP_ARCH_X86_64"), tops.get("SCMP_ARCH_X32")
    if x64 is not None and x32 is not None:
        return [(_JSET, 1, 0, _X32_BIT), (_JGT, "enosys", "filter", x64),
                (_JGT, "enosys", "filter", x32)]
    if x64 is not None:  # x32 calls go on to libseccomp: its bad-arch action
        return [(_JSET, "filter", 0, _X32_BIT), (_JGT, "enosys", "filter", x64)]
    if x32 is not None:
        return [(_JSET, 0, "filter", _X32_BIT), (_JGT, "enosys", "filter", x32)]
    (top,) = tops.values()
    return [(_JGT, "enosys", "filter", top)]


def _assemble(pc: int, insn: _Insn, labels: dict[str, int]) -> bytes:
    def offset(target: int | str) -> int:
        return labels[target] - pc - 1 if isinstance(target, str) else target

    code, jt, jf, k = insn
    jt_off, jf_off = offset(jt), offset(jf)
    if not (0 <= jt_off <= 255 and 0 <= jf_off <= 255):
        raise ValueError("-ENOSYS stub: jump out of range")
    return struct.pack("=HBBI", code, jt_off, jf_off, offset(k))
