#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# gen-cpu-data.py - generate src/cpu/data/cpu-data.json for pve-cpuguard
#
# Copyright (C) 2026 the pve-cpuguard authors
#
# This program is free software: you can redistribute it and/or modify it
# under the terms of the GNU General Public License as published by the Free
# Software Foundation, either version 3 of the License, or (at your option)
# any later version.
#
# This program is distributed in the hope that it will be useful, but WITHOUT
# ANY WARRANTY; without even the implied warranty of MERCHANTABILITY or
# FITNESS FOR A PARTICULAR PURPOSE.  See the GNU General Public License for
# more details.
#
# You should have received a copy of the GNU General Public License along
# with this program.  If not, see <https://www.gnu.org/licenses/>.
"""
Extract x86 CPU feature and CPU model facts from upstream sources and write
them as one JSON document.

This script does not contain or execute code of the projects it reads; it
only reads their source files as text and extracts facts (names, bit
positions, feature lists):

QEMU (target/i386/cpu.c, target/i386/cpu.h, plus any header that defines a
macro used there, e.g. include/standard-headers/asm-x86/kvm_para.h for
KVM_CPUID_FEATURES):
  * feature_word_info[]: for every FeatureWord the feature names per bit and
    the CPUID leaf/subleaf/register (or the MSR index) the word describes;
  * builtin_x86_defs[]: every built-in CPU model with its vendor, its feature
    words (C macro expressions, evaluated here by a small evaluator for
    integer constants, macro references, | & ^ ~ << >> + - * and parentheses;
    anything else is a hard error) and its versions (version number, alias,
    property list);
  * object_property_add_alias() calls: alternative feature spellings.

  Model versions are resolved the way x86_cpu_apply_version_props() does it:
  the props of versions 1..N are applied cumulatively, in list order, on top
  of the base definition.  Props naming a feature (or a feature alias) with
  the value "on"/"off" set/clear that feature; all other props (model-id,
  stepping, vmx-*, SVM-word features, ...) do not change the feature list and
  are reported on stderr.

  Feature words left out on purpose (neither in "features" nor in model
  feature lists): FEAT_VMX_* (VMX capability MSRs), FEAT_SVM (CPUID
  8000_000A EDX, nested SVM sub-features) and the XSAVE component words
  FEAT_XSAVE_XCR0_LO/HI and FEAT_XSAVE_XSS_LO/HI.

Linux (arch/x86/include/asm/cpufeatures.h and cpufeature.h, Makefile):
  * X86_FEATURE_* = word*32+bit and the /proc/cpuinfo name from the comment.
    Both comment conventions are understood; the one in use is detected from
    the explanatory note at the top of cpufeatures.h:
      new: '/* "name" ... */' is shown as name, no quoted name = not shown;
      old: '/* "" ... */' = not shown, '/* "name" ... */' shown as name,
           no quoted string = shown as the lower-cased macro suffix.
  * enum cpuid_leafs in cpufeature.h tells which capability words are direct
    copies of a CPUID register (CPUID_<leaf>[_<subleaf>]_<reg>) and which are
    Linux-defined (CPUID_LNX_*, scattered/synthetic bits).  Only direct words
    are used; the leaf given by the enum name is cross-checked against the
    "CPUID level 0x..." comment above each word.
  * A QEMU feature gets the Linux name of the feature at the SAME
    leaf/subleaf/register/bit (matched by position, never by name), or null.

Proxmox VE:
  * qemu-server src/PVE/QemuServer/CPUConfig.pm: the hard-coded model ->
    vendor hash ($cpu_vendor_list in 8.x, the x86_64 part of the fallback
    $cpu_models_by_arch in 9.x); any number of these files can be given;
  * pve-qemu debian/cpu-models-x86_64.json (PVE 9.2+ static model list).
  The union of all lists is written as "proxmox_models"; "host" (added in
  code by qemu-server) and "max" are always present as "default".

Output is deterministic: features sorted by QEMU name (then CPUID/bit),
models by name, feature lists and aliases sorted, dict keys sorted.

Usage (all paths are arguments; nothing is downloaded):

  tools/gen-cpu-data.py \\
    --qemu-cpu-c target/i386/cpu.c --qemu-cpu-h target/i386/cpu.h \\
    --qemu-header include/standard-headers/asm-x86/kvm_para.h \\
    --qemu-version-file VERSION --qemu-ref v10.2.2 \\
    --linux-cpufeatures arch/x86/include/asm/cpufeatures.h \\
    --linux-cpufeature arch/x86/include/asm/cpufeature.h \\
    --linux-makefile Makefile --linux-ref v7.2.13 \\
    --pve-cpuconfig stable-8/CPUConfig.pm --pve-cpuconfig master/CPUConfig.pm \\
    --pve-models-json debian/cpu-models-x86_64.json \\
    --proxmox-ref '...' --proxmox-file '...' \\
    -o src/cpu/data/cpu-data.json

Exit status is non-zero on anything the extractor does not understand.
"""

import argparse
import json
import re
import sys

# --------------------------------------------------------------------------
# errors / diagnostics


class ExtractError(Exception):
    """Raised for any input the extractor does not understand."""


def die(msg):
    raise ExtractError(msg)


def note(msg):
    print("gen-cpu-data: " + msg, file=sys.stderr)


# --------------------------------------------------------------------------
# C lexing helpers

def strip_c_comments(text):
    """Remove /* */ and // comments, keeping string/char literals and
    newlines (so line numbers stay valid)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == '\\':
                    j += 1
                j += 1
            out.append(text[i:j + 1])
            i = j + 1
        elif text.startswith('/*', i):
            j = text.find('*/', i + 2)
            if j < 0:
                die("unterminated comment")
            out.append(' ' + '\n' * text.count('\n', i, j))
            i = j + 2
        elif text.startswith('//', i):
            j = text.find('\n', i)
            if j < 0:
                j = n
            out.append(' ')
            i = j
        else:
            out.append(c)
            i += 1
    return ''.join(out)


TOKEN_RE = re.compile(r'''
    (?P<ws>\s+)
  | (?P<str>"(?:[^"\\\n]|\\.)*")
  | (?P<chr>'(?:[^'\\\n]|\\.)*')
  | (?P<num>0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*)
  | (?P<id>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><<|>>|&&|\|\||==|!=|<=|>=|->|[{}()\[\].,=;|&^~+\-*/%<>!?:])
''', re.X)


def tokenize(text):
    """Tokenize comment-free C text (no preprocessor lines) into
    (kind, value) tuples."""
    toks = []
    pos = 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            die("cannot tokenize C text near %r" % text[pos:pos + 40])
        kind = m.lastgroup
        if kind != 'ws':
            toks.append((kind, m.group(kind)))
        pos = m.end()
    return toks


def c_string_value(tok):
    """Value of a C string literal token (only simple escapes)."""
    s = tok[1:-1]
    return re.sub(r'\\(.)', lambda m: {'n': '\n', 't': '\t'}.get(m.group(1), m.group(1)), s)


# --------------------------------------------------------------------------
# macros and expression evaluation

class Macros:
    """Object-like #define macros collected from a set of C files.  A macro
    defined more than once with different bodies (e.g. in #ifdef branches) is
    ambiguous; using it is an error."""

    def __init__(self):
        self.defs = {}          # name -> list of distinct bodies
        self.where = {}

    def add_file(self, path, text):
        text = strip_c_comments(text)
        lines = text.split('\n')
        i = 0
        while i < len(lines):
            line = lines[i]
            start = i
            while line.endswith('\\'):
                i += 1
                line = line[:-1] + ' ' + lines[i]
            i += 1
            m = re.match(r'\s*#\s*define\s+([A-Za-z_]\w*)(\(?)(.*)$', line)
            if not m or m.group(2):       # skip function-like macros
                continue
            name, body = m.group(1), m.group(3).strip()
            bodies = self.defs.setdefault(name, [])
            if body not in bodies:
                bodies.append(body)
                self.where.setdefault(name, []).append("%s:%d" % (path, start + 1))

    def body(self, name):
        bodies = self.defs.get(name)
        if bodies is None:
            return None
        if len(bodies) > 1:
            die("macro %s is ambiguous (defined differently at %s)"
                % (name, ", ".join(self.where[name])))
        return bodies[0]


MASK64 = (1 << 64) - 1


class ExprEval:
    """Evaluator for the integer constant expressions used in QEMU's feature
    initialisers: integer literals (with U/L suffixes), macro references,
    parentheses, unary ~ - +, binary * + - << >> & ^ |.  The result is an
    unsigned 64-bit value.  Anything else raises ExtractError."""

    def __init__(self, macros):
        self.macros = macros
        self.cache = {}

    def eval_macro(self, name, stack):
        if name in self.cache:
            return self.cache[name]
        if name in stack:
            die("recursive macro %s" % name)
        body = self.macros.body(name)
        if body is None:
            die("unknown identifier %s in expression" % name)
        val = self.eval_tokens(tokenize(body), stack + (name,))
        self.cache[name] = val
        return val

    def eval_tokens(self, toks, stack=()):
        if not toks:
            die("empty expression")
        p = _ExprParser(self, list(toks), stack)
        val = p.or_()
        if p.pos != len(p.toks):
            die("unparsed tokens in expression: %s"
                % ' '.join(t[1] for t in p.toks[p.pos:]))
        return val & MASK64


class _ExprParser:
    """Precedence-climbing parser over one token list (see ExprEval)."""

    def __init__(self, ev, toks, stack):
        self.ev, self.toks, self.pos, self.stack = ev, toks, 0, stack

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else (None, None)

    def take(self, val):
        if self.peek()[1] == val:
            self.pos += 1
            return True
        return False

    def or_(self):
        v = self.xor()
        while self.take('|'):
            v |= self.xor()
        return v

    def xor(self):
        v = self.and_()
        while self.take('^'):
            v ^= self.and_()
        return v

    def and_(self):
        v = self.shift()
        while self.take('&'):
            v &= self.shift()
        return v

    def shift(self):
        v = self.add()
        while True:
            if self.take('<<'):
                v = (v << self.add()) & MASK64
            elif self.take('>>'):
                v = v >> self.add()
            else:
                return v

    def add(self):
        v = self.mul()
        while True:
            if self.take('+'):
                v = (v + self.mul()) & MASK64
            elif self.take('-'):
                v = (v - self.mul()) & MASK64
            else:
                return v

    def mul(self):
        v = self.unary()
        while self.take('*'):
            v = (v * self.unary()) & MASK64
        return v

    def unary(self):
        if self.take('~'):
            return ~self.unary() & MASK64
        if self.take('-'):
            return -self.unary() & MASK64
        if self.take('+'):
            return self.unary()
        return self.primary()

    def primary(self):
        kind, val = self.peek()
        if kind is None:
            die("unexpected end of expression")
        self.pos += 1
        if val == '(':
            v = self.or_()
            if not self.take(')'):
                die("missing ) in expression")
            return v
        if kind == 'num':
            return int(val.rstrip('uUlL'), 0)
        if kind == 'id':
            return self.ev.eval_macro(val, self.stack)
        die("unexpected token %r in expression" % val)


def eval_string(toks, macros):
    """Concatenate string literal tokens and string-valued macros."""
    out = ''
    for kind, val in toks:
        if kind == 'str':
            out += c_string_value(val)
        elif kind == 'id':
            body = macros.body(val)
            if body is None:
                die("unknown string macro %s" % val)
            out += eval_string(tokenize(body), macros)
        else:
            die("unexpected token %r in string expression" % val)
    return out


# --------------------------------------------------------------------------
# C initializer parsing

class InitList:
    """A brace-enclosed initializer: items is a list of (designator, value);
    designator is a tuple of ('field', name) / ('index', tokens) or None;
    value is an InitList or a list of tokens."""

    def __init__(self, items, cast=None):
        self.items = items
        self.cast = cast

    def fields(self):
        """Map of single-field designator -> value (error on duplicates)."""
        out = {}
        for des, val in self.items:
            if des and len(des) == 1 and des[0][0] == 'field':
                if des[0][1] in out:
                    die("duplicate field .%s" % des[0][1])
                out[des[0][1]] = val
        return out


class InitParser:
    def __init__(self, toks):
        self.toks = toks
        self.pos = 0

    def peek(self, off=0):
        p = self.pos + off
        return self.toks[p] if p < len(self.toks) else (None, None)

    def expect(self, val):
        if self.peek()[1] != val:
            die("expected %r, got %r (token %d)" % (val, self.peek()[1], self.pos))
        self.pos += 1

    def parse_init_list(self):
        self.expect('{')
        items = []
        while self.peek()[1] != '}':
            des = self.parse_designator()
            val = self.parse_value()
            items.append((des, val))
            if self.peek()[1] == ',':
                self.pos += 1
            elif self.peek()[1] != '}':
                die("expected , or } in initializer, got %r" % (self.peek()[1],))
        self.expect('}')
        return InitList(items)

    def parse_designator(self):
        des = []
        start = self.pos
        while True:
            t = self.peek()[1]
            if t == '.' and self.peek(1)[0] == 'id':
                des.append(('field', self.peek(1)[1]))
                self.pos += 2
            elif t == '[':
                depth, j = 0, self.pos
                while True:
                    v = self.toks[j][1]
                    if v == '[':
                        depth += 1
                    elif v == ']':
                        depth -= 1
                        if depth == 0:
                            break
                    j += 1
                des.append(('index', self.toks[self.pos + 1:j]))
                self.pos = j + 1
            else:
                break
        if des:
            if self.peek()[1] != '=':
                die("designator without '='")
            self.pos += 1
            return tuple(des)
        self.pos = start
        return None

    def parse_value(self):
        if self.peek()[1] == '{':
            return self.parse_init_list()
        # compound literal: ( type-name ) { ... }
        if self.peek()[1] == '(':
            depth, j = 0, self.pos
            while True:
                v = self.toks[j][1]
                if v == '(':
                    depth += 1
                elif v == ')':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            if j + 1 < len(self.toks) and self.toks[j + 1][1] == '{':
                cast = ' '.join(t[1] for t in self.toks[self.pos + 1:j])
                self.pos = j + 1
                il = self.parse_init_list()
                il.cast = cast
                return il
        # plain expression: up to , or } at depth 0
        depth = 0
        start = self.pos
        while True:
            kind, v = self.peek()
            if kind is None:
                die("unterminated initializer expression")
            if v in '([{' and kind == 'op':
                depth += 1
            elif v in ')]}' and kind == 'op':
                if depth == 0:
                    break
                depth -= 1
            elif v == ',' and depth == 0:
                break
            self.pos += 1
        return self.toks[start:self.pos]


def extract_initializer(ctext, decl_re, what):
    """Find a declaration matching decl_re in comment-free text, and return the
    parsed brace initializer that follows its '='."""
    m = re.search(decl_re, ctext)
    if not m:
        die("cannot find %s" % what)
    start = ctext.index('{', m.end())
    depth = 0
    i = start
    in_str = None
    while True:
        c = ctext[i]
        if in_str:
            if c == '\\':
                i += 1
            elif c == in_str:
                in_str = None
        elif c in '"\'':
            in_str = c
        elif c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
            if depth == 0:
                break
        i += 1
    body = ctext[start:i + 1]
    for line in body.split('\n'):
        if line.lstrip().startswith('#'):
            die("preprocessor directive inside %s: %s" % (what, line.strip()))
    toks = tokenize(body)
    p = InitParser(toks)
    il = p.parse_init_list()
    if p.pos != len(toks):
        die("trailing tokens after %s" % what)
    return il


# --------------------------------------------------------------------------
# QEMU

EXCLUDED_WORD_RE = re.compile(r'^FEAT_(VMX_\w+|SVM|XSAVE_XCR0_\w+|XSAVE_XSS_\w+)$')
REG_NAMES = {'R_EAX': 'EAX', 'R_EBX': 'EBX', 'R_ECX': 'ECX', 'R_EDX': 'EDX'}


def fmt_leaf(leaf):
    """CPUID leaf in Intel SDM style: upper-case hex, at least two digits,
    'H' suffix (01H, 0DH, 80000001H, C0000001H)."""
    return "%02XH" % leaf


def fmt_cpuid(leaf, subleaf, reg):
    if subleaf is None:
        return "CPUID.%s:%s" % (fmt_leaf(leaf), reg)
    return "CPUID.%s.%d:%s" % (fmt_leaf(leaf), subleaf, reg)


def fmt_msr(index):
    """MSR index in the same style: MSR 10AH, MSR CFH, MSR 345H."""
    return "MSR %02XH" % index


class QemuData:
    def __init__(self, cpu_c, cpu_h, headers):
        self.macros = Macros()
        texts = {}
        for path in [cpu_h] + headers + [cpu_c]:
            with open(path, encoding='utf-8') as f:
                texts[path] = f.read()
            self.macros.add_file(path, texts[path])
        self.ev = ExprEval(self.macros)
        self.c_raw = texts[cpu_c]
        self.c_text = strip_c_comments(self.c_raw)
        self.h_text = strip_c_comments(texts[cpu_h])
        self.parse_feature_words()
        self.parse_aliases()
        self.parse_models()

    # -- FeatureWord enum order (for deterministic diagnostics only)
    def feature_word_enum(self):
        m = re.search(r'typedef\s+enum\s+FeatureWord\s*\{(.*?)\}\s*FeatureWord\s*;',
                      self.h_text, re.S)
        if not m:
            die("FeatureWord enum not found in cpu.h")
        names = [n.strip() for n in m.group(1).split(',') if n.strip()]
        for n in names:
            if not re.match(r'^\w+$', n):
                die("unexpected FeatureWord enum entry %r" % n)
        if names[-1] != 'FEATURE_WORDS':
            die("FeatureWord enum does not end with FEATURE_WORDS")
        return names[:-1]

    def parse_feature_words(self):
        enum = self.feature_word_enum()
        il = extract_initializer(
            self.c_text,
            r'FeatureWordInfo\s+feature_word_info\s*\[\s*FEATURE_WORDS\s*\]\s*=',
            'feature_word_info[]')
        self.words = {}          # FEAT_x -> dict(kind, leaf, subleaf, reg, msr, names{bit:name})
        for des, val in il.items:
            if not des or len(des) != 1 or des[0][0] != 'index' or len(des[0][1]) != 1:
                die("unexpected feature_word_info entry designator")
            wname = des[0][1][0][1]
            if wname not in enum:
                die("feature word %s not in FeatureWord enum" % wname)
            if not isinstance(val, InitList):
                die("feature word %s is not an initializer list" % wname)
            f = val.fields()
            wtype = ' '.join(t[1] for t in f.get('type', []))
            info = {'type': wtype, 'names': {}}
            if wtype == 'CPUID_FEATURE_WORD':
                cf = f['cpuid'].fields()
                info['leaf'] = self.ev.eval_tokens(cf['eax'])
                needs_ecx = cf.get('needs_ecx')
                if needs_ecx is not None and [t[1] for t in needs_ecx] not in (['true'], ['false']):
                    die("%s: unexpected needs_ecx" % wname)
                if needs_ecx and needs_ecx[0][1] == 'true':
                    info['subleaf'] = self.ev.eval_tokens(cf['ecx'])
                else:
                    if 'ecx' in cf:
                        die("%s: ecx without needs_ecx" % wname)
                    info['subleaf'] = None
                reg = ' '.join(t[1] for t in cf['reg'])
                if reg not in REG_NAMES:
                    die("%s: unknown register %s" % (wname, reg))
                info['reg'] = REG_NAMES[reg]
                info['cpuid'] = fmt_cpuid(info['leaf'], info['subleaf'], info['reg'])
                nbits = 32
            elif wtype == 'MSR_FEATURE_WORD':
                mf = f['msr'].fields()
                info['msr'] = self.ev.eval_tokens(mf['index'])
                info['cpuid'] = fmt_msr(info['msr'])
                nbits = 64
            else:
                die("%s: unknown feature word type %r" % (wname, wtype))
            fn = f.get('feat_names')
            if fn is not None:
                if not isinstance(fn, InitList):
                    die("%s: feat_names is not a list" % wname)
                idx = 0
                for d, v in fn.items:
                    if d:
                        if len(d) != 1 or d[0][0] != 'index':
                            die("%s: bad feat_names designator" % wname)
                        idx = self.ev.eval_tokens(d[0][1])
                    if isinstance(v, InitList):
                        die("%s: nested list in feat_names" % wname)
                    vals = [t[1] for t in v]
                    if vals == ['NULL']:
                        pass
                    elif all(t[0] == 'str' for t in v) and v:
                        name = eval_string(v, self.macros)
                        if idx >= nbits:
                            die("%s: bit %d out of range" % (wname, idx))
                        info['names'][idx] = name
                    else:
                        die("%s: unexpected feat_names entry %r" % (wname, vals))
                    idx += 1
                if idx > nbits:
                    die("%s: too many feat_names (%d)" % (wname, idx))
            info['excluded'] = bool(EXCLUDED_WORD_RE.match(wname))
            self.words[wname] = info
        missing = [w for w in enum if w not in self.words]
        if missing:
            die("feature words without feature_word_info entry: %s" % ', '.join(missing))
        self.word_order = enum

        # name -> list of (word, bit) for included / excluded words
        self.feat_bits = {}
        self.excluded_names = set()
        for w in enum:
            info = self.words[w]
            for bit, name in sorted(info['names'].items()):
                if info['excluded']:
                    self.excluded_names.add(name)
                else:
                    self.feat_bits.setdefault(name, []).append((w, bit))
        for name, lst in self.feat_bits.items():
            if len({w for w, _ in lst}) > 1:
                die("feature name %s used in more than one word: %s" % (name, lst))
            if len(lst) > 1:
                note("feature name %r names several bits of %s: %s "
                     "(QEMU registers one property that sets/clears all of them)"
                     % (name, lst[0][0], [b for _, b in lst]))
        clash = self.excluded_names & set(self.feat_bits)
        if clash:
            die("names both in included and excluded words: %s" % sorted(clash))

    def parse_aliases(self):
        """object_property_add_alias(obj, "alias", obj, "target") calls."""
        self.alias_target = {}
        self.other_aliases = {}
        for m in re.finditer(
                r'object_property_add_alias\s*\(\s*(\w+)\s*,\s*("(?:[^"\\]|\\.)*")\s*,'
                r'\s*(\w+)\s*,\s*("(?:[^"\\]|\\.)*")\s*\)', self.c_text):
            alias, target = c_string_value(m.group(2)), c_string_value(m.group(4))
            if alias in self.alias_target or alias in self.other_aliases:
                die("alias %s registered twice" % alias)
            if target in self.feat_bits or target in self.excluded_names:
                self.alias_target[alias] = target
            else:
                self.other_aliases[alias] = target
        # any alias call we could not parse?
        n_calls = len(re.findall(r'object_property_add_alias\s*\(', self.c_text))
        if n_calls != len(self.alias_target) + len(self.other_aliases):
            die("could not parse all object_property_add_alias() calls (%d of %d)"
                % (len(self.alias_target) + len(self.other_aliases), n_calls))
        for alias in list(self.alias_target):
            if alias in self.feat_bits or alias in self.excluded_names:
                die("alias %s is also a feature name" % alias)

    def canonical(self, name):
        """Canonical feature name for a QOM property name, or None."""
        if name in self.feat_bits:
            return name
        if name in self.alias_target and self.alias_target[name] in self.feat_bits:
            return self.alias_target[name]
        return None

    def is_excluded_feature(self, name):
        return name in self.excluded_names or \
            self.alias_target.get(name) in self.excluded_names

    # -- models
    def parse_models(self):
        il = extract_initializer(
            self.c_text,
            r'X86CPUDefinition\s+builtin_x86_defs\s*\[\s*\]\s*=',
            'builtin_x86_defs[]')
        self.models = []
        self.ignored_props = {}         # prop -> set of model versions
        self.unnamed_bits = []
        seen_names = set()
        for des, val in il.items:
            if des or not isinstance(val, InitList):
                die("unexpected builtin_x86_defs entry")
            fields = {}
            feats = {}
            for d, v in val.items:
                if not d:
                    die("positional field in CPU definition")
                if len(d) == 1 and d[0][0] == 'field':
                    if d[0][1] in fields:
                        die("duplicate field %s" % d[0][1])
                    fields[d[0][1]] = v
                elif len(d) == 2 and d[0] == ('field', 'features') and d[1][0] == 'index':
                    w = ' '.join(t[1] for t in d[1][1])
                    if w not in self.words:
                        die("unknown feature word %s in model" % w)
                    if w in feats:
                        die("duplicate .features[%s]" % w)
                    feats[w] = v
                else:
                    die("unexpected designator in CPU definition: %r" % (d,))
            name = eval_string(fields['name'], self.macros)
            if name in seen_names:
                die("model %s defined twice" % name)
            seen_names.add(name)
            vendor = eval_string(fields['vendor'], self.macros) if 'vendor' in fields else 'default'
            if vendor != 'default' and len(vendor) != 12:
                die("model %s: vendor %r is not 12 characters" % (name, vendor))
            base = set()
            for w, expr in feats.items():
                if isinstance(expr, InitList):
                    die("model %s: .features[%s] is a list" % (name, w))
                bits = self.ev.eval_tokens(expr)
                info = self.words[w]
                if info['excluded']:
                    continue
                for b in range(64):
                    if bits >> b & 1:
                        n = info['names'].get(b)
                        if n is None:
                            self.unnamed_bits.append((name, w, b))
                        else:
                            base.add(n)
            versions = []
            if 'versions' in fields:
                vl = fields['versions']
                if not isinstance(vl, InitList):
                    die("model %s: versions is not a list" % name)
                for vd, vv in vl.items:
                    if vd or not isinstance(vv, InitList):
                        die("model %s: bad version entry" % name)
                    vf = vv.fields()
                    if not vf:                      # { /* end of list */ }
                        continue
                    if 'version' not in vf:
                        die("model %s: version entry without .version" % name)
                    ver = self.ev.eval_tokens(vf['version'])
                    if ver == 0:
                        continue
                    alias = eval_string(vf['alias'], self.macros) if 'alias' in vf else None
                    props = []
                    if 'props' in vf:
                        pl = vf['props']
                        if not isinstance(pl, InitList):
                            die("model %s-v%d: props is not a list" % (name, ver))
                        for pd, pv in pl.items:
                            if pd or not isinstance(pv, InitList):
                                die("model %s-v%d: bad prop entry" % (name, ver))
                            if not pv.items:          # end of list
                                continue
                            if len(pv.items) != 2 or any(d for d, _ in pv.items):
                                die("model %s-v%d: prop entry is not {name, value}" % (name, ver))
                            pn = eval_string(pv.items[0][1], self.macros)
                            pval = eval_string(pv.items[1][1], self.macros)
                            props.append((pn, pval))
                    versions.append((ver, alias, props))
            else:
                versions = [(1, None, [])]
            vnums = [v[0] for v in versions]
            if vnums != list(range(1, len(vnums) + 1)):
                die("model %s: versions are not 1..N in order: %s" % (name, vnums))
            current = set(base)
            for ver, alias, props in versions:
                vname = "%s-v%d" % (name, ver)
                for pn, pval in props:
                    canon = self.canonical(pn)
                    if canon is not None:
                        if pval == 'on':
                            current.add(canon)
                        elif pval == 'off':
                            current.discard(canon)
                        else:
                            die("%s: feature prop %s has value %r" % (vname, pn, pval))
                    else:
                        why = 'excluded-word feature' if self.is_excluded_feature(pn) \
                            else 'not a feature'
                        self.ignored_props.setdefault((pn, why), set()).add(vname)
                aliases = []
                if ver == 1:
                    aliases.append(name)
                if alias:
                    aliases.append(alias)
                self.models.append({
                    'name': vname,
                    'aliases': sorted(aliases),
                    'vendor': vendor,
                    'features': ' '.join(sorted(current)),
                })
        if self.unnamed_bits:
            die("models set feature bits that have no name: %s" % self.unnamed_bits)
        names = {}
        for m in self.models:
            for n in [m['name']] + m['aliases']:
                if n in names:
                    die("model name/alias %s used twice (%s, %s)" % (n, names[n], m['name']))
                names[n] = m['name']
        self.models.sort(key=lambda m: m['name'])

    def feature_aliases(self, name):
        """Other spellings QEMU accepts for canonical feature `name`:
        explicit object_property_add_alias() names, plus the spelling with
        every '-' replaced by '_' of the name and of each explicit alias
        (feat2prop() maps '_' to '-' in "-cpu model,feat=on" strings)."""
        spellings = {name} | {a for a, t in self.alias_target.items() if t == name}
        out = set(spellings)
        for s in spellings:
            out.add(s.replace('-', '_'))
        out.discard(name)
        return sorted(out)


# --------------------------------------------------------------------------
# Linux

def linux_version(makefile_text):
    vals = {}
    for key in ('VERSION', 'PATCHLEVEL', 'SUBLEVEL', 'EXTRAVERSION'):
        m = re.search(r'^%s\s*=\s*(\S*)\s*$' % key, makefile_text, re.M)
        if not m:
            die("Makefile has no %s" % key)
        vals[key] = m.group(1)
    v = "%s.%s" % (vals['VERSION'], vals['PATCHLEVEL'])
    if vals['SUBLEVEL']:
        v += ".%s" % vals['SUBLEVEL']
    return v + vals['EXTRAVERSION']


def parse_cpuid_enum_name(name):
    """CPUID_<leaf>[_<subleaf>]_<reg> -> (leaf, subleaf or None, reg);
    leaf is either one hex group or two 4-digit groups (8000_0001)."""
    m = re.match(r'^CPUID_(\w+)_(E[ABCD]X)$', name)
    if not m:
        return None
    parts = m.group(1).split('_')
    if len(parts) >= 2 and len(parts[0]) == 4 and len(parts[1]) == 4:
        leaf = int(parts[0] + parts[1], 16)
        rest = parts[2:]
    else:
        leaf = int(parts[0], 16)
        rest = parts[1:]
    if len(rest) > 1:
        die("cannot parse Linux cpuid word name %s" % name)
    sub = int(rest[0], 16) if rest else None
    return leaf, sub, m.group(2)


class LinuxData:
    def __init__(self, cpufeatures_path, cpufeature_path, makefile_path):
        with open(cpufeatures_path, encoding='utf-8') as f:
            text = f.read()
        with open(cpufeature_path, encoding='utf-8') as f:
            enum_text = strip_c_comments(f.read())
        with open(makefile_path, encoding='utf-8') as f:
            self.version = linux_version(f.read())

        # comment convention
        flat = re.sub(r'[\s*]+', ' ', text[:3000])
        if 'If the string is "", this feature bit is not displayed' in flat:
            self.convention = 'old'
        elif 'Otherwise, this feature bit is not displayed in /proc/cpuinfo at all' in flat:
            self.convention = 'new'
        else:
            die("cannot determine the /proc/cpuinfo comment convention of cpufeatures.h")

        # word -> CPUID register, from enum cpuid_leafs
        m = re.search(r'enum\s+cpuid_leafs\s*\{(.*?)\}', enum_text, re.S)
        if not m:
            die("enum cpuid_leafs not found")
        self.word_reg = {}
        self.word_enum = {}
        idx = -1
        for ent in m.group(1).split(','):
            ent = ent.strip()
            if not ent:
                continue
            mm = re.match(r'^(\w+)\s*(?:=\s*(\d+))?$', ent)
            if not mm:
                die("cannot parse enum cpuid_leafs entry %r" % ent)
            idx = int(mm.group(2)) if mm.group(2) else idx + 1
            if mm.group(1) == 'NR_CPUID_WORDS':
                continue
            self.word_enum[idx] = mm.group(1)
            parsed = parse_cpuid_enum_name(mm.group(1))
            if parsed:
                self.word_reg[idx] = parsed
            elif not mm.group(1).startswith('CPUID_LNX_'):
                die("unknown cpuid_leafs entry %s" % mm.group(1))

        # cross-check with the word comments in cpufeatures.h, take the
        # subleaf from the comment (0x00000007:0) where the enum omits it
        for cm in re.finditer(r'CPUID level (0x[0-9a-fA-F]+)(?::(\d+))?([^*]*?)word (\d+)', text):
            leaf, sub, rest, word = int(cm.group(1), 16), cm.group(2), cm.group(3), int(cm.group(4))
            rm = re.search(r'\b(E[ABCD]X)\b', rest)
            if word not in self.word_reg:
                die("cpufeatures.h word %d has a CPUID comment but enum says %s"
                    % (word, self.word_enum.get(word)))
            eleaf, esub, ereg = self.word_reg[word]
            if eleaf != leaf or (rm and rm.group(1) != ereg) or \
                    (sub is not None and esub is not None and int(sub) != esub):
                die("word %d: comment (%s) disagrees with enum %s"
                    % (word, cm.group(0), self.word_enum[word]))
            if sub is not None:
                self.word_reg[word] = (eleaf, int(sub), ereg)
        for word, (leaf, sub, reg) in self.word_reg.items():
            if leaf == 7 and sub is None:
                die("word %d: leaf 7 without subleaf" % word)

        # features
        self.by_pos = {}            # (word, bit) -> (macro, shown name or None)
        ctext = text
        for fm in re.finditer(
                r'^#define\s+X86_FEATURE_(\w+)\s+\(\s*(\d+)\s*\*\s*32\s*\+\s*(\d+)\s*\)'
                r'[ \t]*(/\*.*?\*/)?', ctext, re.M | re.S):
            macro, word, bit, comment = fm.group(1), int(fm.group(2)), int(fm.group(3)), fm.group(4)
            qm = re.match(r'/\*\s*"([^"]*)"', comment or '')
            if self.convention == 'new':
                shown = qm.group(1) if qm else None
                if qm and qm.group(1) == '':
                    die("empty quoted name in new-convention header: %s" % macro)
            else:
                if qm:
                    shown = qm.group(1) or None
                else:
                    shown = macro.lower()
            key = (word, bit)
            if key in self.by_pos:
                prev = self.by_pos[key]
                if prev[1] != shown:
                    die("two Linux features at word %d bit %d: %s, %s" % (word, bit, prev[0], macro))
                continue
            self.by_pos[key] = (macro, shown)
        # every #define X86_FEATURE_ line must have matched
        n_def = len(re.findall(r'^#define\s+X86_FEATURE_\w+', ctext, re.M))
        if n_def != sum(1 for _ in re.finditer(
                r'^#define\s+X86_FEATURE_(\w+)\s+\(\s*(\d+)\s*\*\s*32\s*\+\s*(\d+)\s*\)', ctext, re.M)):
            die("some X86_FEATURE_ definitions could not be parsed")

        self.pos_by_reg = {}
        for word, regkey in self.word_reg.items():
            self.pos_by_reg[regkey] = word

    def name_at(self, leaf, subleaf, reg, bit):
        """(/proc/cpuinfo name or None, matched) for a CPUID position."""
        word = self.pos_by_reg.get((leaf, subleaf, reg))
        if word is None:
            return None, False
        ent = self.by_pos.get((word, bit))
        if ent is None:
            return None, True
        return ent[1], True


# --------------------------------------------------------------------------
# Proxmox

def perl_hash_block(text, start_re):
    m = re.search(start_re, text)
    if not m:
        return None
    i = text.index('{', m.end() - 1)
    depth = 0
    j = i
    while True:
        c = text[j]
        if c == '{':
            depth += 1
        elif c == '}':
            depth -= 1
            if depth == 0:
                break
        j += 1
    return text[i + 1:j]


def perl_pairs(block, what):
    out = {}
    for line in block.split('\n'):
        line = re.sub(r'\s#.*$', '', line).strip()
        if not line or line.startswith('#'):
            continue
        m = re.match(r"""^(?:'([^']+)'|"([^"]+)"|([\w.-]+))\s*=>\s*'([^']*)'\s*,?$""", line)
        if not m:
            die("cannot parse %s line %r" % (what, line))
        key = m.group(1) or m.group(2) or m.group(3)
        if key in out:
            die("%s: duplicate key %s" % (what, key))
        out[key] = m.group(4)
    return out


def parse_cpuconfig(path):
    with open(path, encoding='utf-8') as f:
        text = f.read()
    block = perl_hash_block(text, r'my\s+\$cpu_vendor_list\s*=\s*\{')
    if block is not None:
        return perl_pairs(block, path + " $cpu_vendor_list")
    outer = perl_hash_block(text, r'\$cpu_models_by_arch\s*=\s*\{')
    if outer is None:
        die("%s: neither $cpu_vendor_list nor $cpu_models_by_arch found" % path)
    inner = perl_hash_block(outer, r'\bx86_64\s*=>\s*\{')
    if inner is None:
        die("%s: no x86_64 list in $cpu_models_by_arch" % path)
    return perl_pairs(inner, path + " $cpu_models_by_arch{x86_64}")


# --------------------------------------------------------------------------
# main

def build(args):
    q = QemuData(args.qemu_cpu_c, args.qemu_cpu_h, args.qemu_header or [])
    lx = LinuxData(args.linux_cpufeatures, args.linux_cpufeature, args.linux_makefile)

    if args.qemu_version_file:
        with open(args.qemu_version_file, encoding='utf-8') as f:
            qemu_version = f.read().strip()
    else:
        qemu_version = args.qemu_version
    if not qemu_version:
        die("QEMU version not given")

    # features
    features = []
    unmatched_regs = set()
    for w in q.word_order:
        info = q.words[w]
        if info['excluded']:
            continue
        for bit, name in sorted(info['names'].items()):
            linux = None
            if info['type'] == 'CPUID_FEATURE_WORD':
                linux, matched = lx.name_at(info['leaf'], info['subleaf'], info['reg'], bit)
                if not matched:
                    unmatched_regs.add((w, info['cpuid']))
            features.append({
                'qemu': name,
                'cpuid': info['cpuid'],
                'bit': bit,
                'linux': linux,
                'aliases': q.feature_aliases(name),
            })
    features.sort(key=lambda f: (f['qemu'], f['cpuid'], f['bit']))
    spell = {}
    for f in features:
        for s in [f['qemu']] + f['aliases']:
            if spell.setdefault(s, f['qemu']) != f['qemu']:
                die("spelling %s maps to %s and %s" % (s, spell[s], f['qemu']))

    # proxmox
    pve = {}
    for path in args.pve_cpuconfig or []:
        for k, v in parse_cpuconfig(path).items():
            if pve.setdefault(k, v) != v:
                die("Proxmox vendor conflict for %s: %s vs %s" % (k, pve[k], v))
    for path in args.pve_models_json or []:
        with open(path, encoding='utf-8') as f:
            for k, v in json.load(f).items():
                if pve.setdefault(k, v) != v:
                    die("Proxmox vendor conflict for %s: %s vs %s" % (k, pve[k], v))
    for special in ('host', 'max'):
        if pve.setdefault(special, 'default') != 'default':
            die("Proxmox lists %s with vendor %s" % (special, pve[special]))
    for k, v in pve.items():
        if v not in ('GenuineIntel', 'AuthenticAMD', 'default'):
            die("unexpected Proxmox vendor %r for %s" % (v, k))

    known = set()
    for m in q.models:
        known.add(m['name'])
        known.update(m['aliases'])
    unresolved = sorted(n for n in pve if n not in known and n not in ('host', 'max'))

    out = {
        'generated_by': 'tools/gen-cpu-data.py',
        'qemu': {'version': qemu_version, 'ref': args.qemu_ref, 'file': 'target/i386/cpu.c'},
        'linux': {'version': lx.version, 'ref': args.linux_ref,
                  'file': 'arch/x86/include/asm/cpufeatures.h'},
        'proxmox': {'ref': args.proxmox_ref, 'file': args.proxmox_file},
        'features': features,
        'models': q.models,
        'proxmox_models': dict(sorted(pve.items())),
        'unresolved': unresolved,
    }

    # diagnostics
    note("QEMU %s: %d feature entries, %d model versions; Linux %s (%s comment convention)"
         % (qemu_version, len(features), len(q.models), lx.version, lx.convention))
    note("excluded feature words: %s" % ', '.join(w for w in q.word_order if q.words[w]['excluded']))
    for w, c in sorted(unmatched_regs):
        note("no Linux word for %s (%s): linux = null" % (w, c))
    for (pn, why), where in sorted(q.ignored_props.items()):
        note("ignored version prop %r (%s) in %s" % (pn, why, ', '.join(sorted(where))))
    note("non-feature property aliases ignored: %s"
         % ', '.join('%s->%s' % kv for kv in sorted(q.other_aliases.items())))
    note("Proxmox names: %d, unresolved: %s" % (len(pve), ', '.join(unresolved) or '-'))
    return out


COLUMNS = {
    'features': 'qemu|cpuid|bit|linux (empty: Linux does not print it)|aliases (space-separated)',
    'models': 'name|vendor (default: the host\'s)|aliases (space-separated)|features (space-separated)',
    'proxmox_models': 'name|vendor Proxmox VE forces (default: the host\'s)',
}


def row(*cols):
    """One table row: columns joined with '|' (which no value may contain)."""
    cols = [str(c) for c in cols]
    for c in cols:
        if '|' in c:
            raise ExtractError("value %r contains the column separator '|'" % c)
    return '|'.join(cols)


def render(out):
    """The file's text. Tables are lists of '|'-separated rows, one per line:
    pve-cpuguard parses a row as one borrowed string, which is much cheaper
    than an object per entry (the hookscript parses this file on every VM
    start)."""
    stored = dict(out)
    stored['columns'] = COLUMNS
    stored['features'] = [row(f['qemu'], f['cpuid'], f['bit'], f['linux'] or '',
                              ' '.join(f['aliases'])) for f in out['features']]
    stored['models'] = [row(m['name'], m['vendor'], ' '.join(m['aliases']), m['features'])
                        for m in out['models']]
    stored['proxmox_models'] = [row(k, v) for k, v in out['proxmox_models'].items()]
    return json.dumps(stored, indent=1, ensure_ascii=False) + '\n'


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--qemu-cpu-c', required=True, help='QEMU target/i386/cpu.c')
    ap.add_argument('--qemu-cpu-h', required=True, help='QEMU target/i386/cpu.h')
    ap.add_argument('--qemu-header', action='append',
                    help='extra QEMU header defining macros (repeatable), '
                         'e.g. include/standard-headers/asm-x86/kvm_para.h')
    ap.add_argument('--qemu-version-file', help='QEMU VERSION file')
    ap.add_argument('--qemu-version', help='QEMU version (if no VERSION file)')
    ap.add_argument('--qemu-ref', required=True, help='QEMU tag/commit/source description')
    ap.add_argument('--linux-cpufeatures', required=True,
                    help='Linux arch/x86/include/asm/cpufeatures.h')
    ap.add_argument('--linux-cpufeature', required=True,
                    help='Linux arch/x86/include/asm/cpufeature.h (enum cpuid_leafs)')
    ap.add_argument('--linux-makefile', required=True, help='Linux top-level Makefile')
    ap.add_argument('--linux-ref', required=True, help='Linux tag/commit/source description')
    ap.add_argument('--pve-cpuconfig', action='append',
                    help='qemu-server CPUConfig.pm (repeatable)')
    ap.add_argument('--pve-models-json', action='append',
                    help='pve-qemu debian/cpu-models-x86_64.json (repeatable)')
    ap.add_argument('--proxmox-ref', required=True)
    ap.add_argument('--proxmox-file', required=True)
    ap.add_argument('-o', '--output', required=True, help='output JSON path ("-" = stdout)')
    args = ap.parse_args(argv)
    try:
        out = build(args)
    except ExtractError as e:
        print("gen-cpu-data: error: %s" % e, file=sys.stderr)
        return 1
    text = render(out)
    if args.output == '-':
        sys.stdout.write(text)
    else:
        with open(args.output, 'w', encoding='utf-8') as f:
            f.write(text)
    return 0


if __name__ == '__main__':
    sys.exit(main())
