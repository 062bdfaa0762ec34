#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# check-libvirt-models.py - cross-check pve-cpuguard's CPU model table
# against libvirt's cpu_map, and add the models only libvirt has
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
Compare the x86 CPU models of src/cpu/data/cpu-data.json (QEMU's
builtin_x86_defs[], see tools/gen-cpu-data.py) with libvirt's
src/cpu_map/x86_<Model>.xml files, which libvirt generates from QEMU's own
model expansion (src/cpu_map/sync_qemu_models_i386.py).

Inputs are a directory holding libvirt cpu_map files (x86_features.xml and
any number of x86_<Model>.xml; a libvirt checkout's src/cpu_map works as is)
and the JSON.  Nothing is downloaded; the XML files are only read as data.

Feature names are matched by CPUID position, never by spelling:
x86_features.xml gives each libvirt feature its CPUID leaf/subleaf/register
bit (or MSR index/bit); the JSON gives the same for each QEMU feature.  So
libvirt's `pclmuldq`, `lahf_lm`, `tsc_adjust`, `cmt`... land on QEMU's
`pclmulqdq`, `lahf-lm`, `tsc-adjust`, ...  A libvirt feature missing from
x86_features.xml (an older copy of that file, say) is matched by spelling
against QEMU's names and aliases, and reported as such.  Features of the
words the table leaves out on purpose (VMX capability MSRs 480H-491H and
`vmx-*` names, SVM leaf 8000000AH EDX) are ignored on both sides.

Only versioned libvirt models (`Name-vN`) are compared: those are generated
from QEMU's versioned models.  The unversioned files (x86_Haswell.xml...)
are libvirt's own historic definitions; they are read only as the parent a
versioned file may include (`<model name='DiamondRapids'/>`).

Modes:
  default   print a Markdown report (or --report FILE): counts, the
            spelling map, every disagreement with its likely reason, and the
            libvirt models the table lacks (addable or not, and why);
  --write   also add the addable models to the JSON, as rows with a fifth
            column `libvirt` (the marker pve-cpuguard shows), and record the
            source under the JSON's `libvirt` key.  Rows added earlier by
            this tool are replaced, QEMU rows are never touched; run it again
            after tools/gen-cpu-data.py regenerated the file.
            --new-feature ROW adds a feature row (qemu|cpuid|bit|linux|aliases)
            the QEMU release lacks, so that models using it become addable;
            --new-feature-source says where its position came from.

Usage:
  tools/check-libvirt-models.py --cpu-map DIR [--data JSON] [--report FILE]
      [--write --libvirt-ref 'libvirt/libvirt <commit(s)>'
       [--new-feature ROW ... --new-feature-source TEXT]]

Exit status: 0 when every compared model agrees or every disagreement has
an explanation, 1 when a disagreement is unexplained, 2 on bad input.
"""

import argparse
import json
import os
import re
import sys
import xml.etree.ElementTree as ET

VENDORS = {
    'Intel': 'GenuineIntel',
    'AMD': 'AuthenticAMD',
    'Hygon': 'HygonGenuine',
    # libvirt's x86_YongFeng-v2.xml and later spell QEMU's CPUID_VENDOR_ZHAOXIN1
    # ('CentaurHauls') this way
    'Zhaoxin CentaurHauls': 'CentaurHauls',
}

REGS = ('eax', 'ebx', 'ecx', 'edx')
VERSIONED = re.compile(r'^(?P<base>.+)-v(?P<ver>\d+)$')
MARKER = 'libvirt'

# QEMU features libvirt's model sync (src/cpu_map/sync_qemu_models_i386.py)
# leaves out of every model on purpose.
LIBVIRT_SKIPS = ('monitor', 'topoext')

# A versioned libvirt file that only names an unversioned model
# (`<model name='Skylake-Server-IBRS'/>`) is not a QEMU expansion: the sync
# writes such an alias for every QEMU version that has an alias (and for
# every -v1), and the named model is libvirt's own hand-written definition,
# which libvirt never changes once released.  Differences there are that
# definition's history, not evidence about QEMU's table.
ALIAS_WHY = ('the libvirt file only names libvirt\'s own model %s, which libvirt never '
             'rewrites once released (for models older than the sync, a hand-written '
             'definition), not QEMU\'s expansion')

# Disagreements of generated (non-alias) files explained one by one; see
# docs/cpu-models.md for the sources.  (libvirt model, feature) -> reason.
KNOWN = {
}


class InputError(Exception):
    pass


# --------------------------------------------------------------------------
# positions

def cpuid_keys(leaf, subleaf, reg):
    """The JSON's spelling of a CPUID register, with and without subleaf
    (libvirt writes ecx_in='0x00' where QEMU's word has no subleaf, and the
    other way round)."""
    out = []
    if subleaf is not None:
        out.append('CPUID.%02XH.%d:%s' % (leaf, subleaf, reg.upper()))
    out.append('CPUID.%02XH:%s' % (leaf, reg.upper()))
    if subleaf is None:
        out.append('CPUID.%02XH.0:%s' % (leaf, reg.upper()))
    return out


def msr_key(index):
    return 'MSR %02XH' % index


def is_excluded_position(key):
    """Feature words gen-cpu-data.py leaves out: VMX capability MSRs and the
    SVM feature leaf."""
    m = re.match(r'^MSR ([0-9A-F]+)H$', key)
    if m and 0x480 <= int(m.group(1), 16) <= 0x491:
        return True
    return key.startswith('CPUID.8000000AH')


def mask_bits(value):
    v = int(value, 16)
    return [b for b in range(32) if v >> b & 1]


# --------------------------------------------------------------------------
# libvirt

class Libvirt:
    def __init__(self, directory):
        self.dir = directory
        path = os.path.join(directory, 'x86_features.xml')
        if not os.path.exists(path):
            raise InputError('%s: missing' % path)
        self.features = {}      # name -> dict(keys=[[key, bit], ...], migratable, aliases)
        for el in ET.parse(path).getroot().iter('feature'):
            name = el.get('name')
            keys = []
            for c in el.findall('cpuid'):
                leaf = int(c.get('eax_in'), 16)
                sub = int(c.get('ecx_in'), 16) if c.get('ecx_in') is not None else None
                for reg in REGS:
                    if c.get(reg) is not None:
                        for b in mask_bits(c.get(reg)):
                            keys.append((cpuid_keys(leaf, sub, reg), b))
            for m in el.findall('msr'):
                idx = int(m.get('index'), 16)
                for b in mask_bits(m.get('eax', '0')):
                    keys.append(([msr_key(idx)], b))
                for b in mask_bits(m.get('edx', '0')):
                    keys.append(([msr_key(idx)], b + 32))
            if len(keys) != 1:
                raise InputError('x86_features.xml: feature %s has %d bits' % (name, len(keys)))
            self.features[name] = {
                'keys': keys[0][0], 'bit': keys[0][1],
                'migratable': el.get('migratable') != 'no',
                'aliases': [a.get('name') for a in el.findall('alias')],
            }
        self.models = {}        # name -> dict(vendor, features, parent, file, note)
        for fn in sorted(os.listdir(directory)):
            m = re.match(r'^x86_(.+)\.xml$', fn)
            if not m or fn in ('x86_features.xml', 'x86_vendors.xml'):
                continue
            root = ET.parse(os.path.join(directory, fn)).getroot()
            for model in root.findall('model'):
                parent = model.find('model')
                vendor = model.find('vendor')
                self.models[model.get('name')] = {
                    'file': fn,
                    'parent': parent.get('name') if parent is not None else None,
                    'vendor': vendor.get('name') if vendor is not None else None,
                    'features': [f.get('name') for f in model.findall('feature')
                                 if f.get('policy') in (None, 'require')],
                }

    def alias_of(self, name):
        """The libvirt model a versioned file only names (`<model name='X'/>`
        and no features of its own), or None."""
        m = self.models[name]
        if m['parent'] and not m['features'] and not VERSIONED.match(m['parent']):
            return m['parent']
        return None

    def expand(self, name, seen=()):
        """(vendor, feature names) of a model with its parents included."""
        if name not in self.models:
            raise InputError('model %s (a parent of %s) has no file here'
                             % (name, seen[-1] if seen else name))
        if name in seen:
            raise InputError('model %s includes itself' % name)
        m = self.models[name]
        vendor, feats = None, set()
        if m['parent']:
            vendor, feats = self.expand(m['parent'], seen + (name,))
        return m['vendor'] or vendor, feats | set(m['features'])


# --------------------------------------------------------------------------
# the table

class Table:
    def __init__(self, path):
        self.path = path
        with open(path, encoding='utf-8') as f:
            self.raw = json.load(f)
        self.by_pos = {}        # (cpuid key, bit) -> qemu name
        self.spelling = {}      # qemu name / alias -> qemu name
        self.pos_of = {}        # qemu name -> (cpuid key, bit)
        for row in self.raw['features']:
            qemu, cpuid, bit, _linux, aliases = row.split('|')
            self.by_pos[(cpuid, int(bit))] = qemu
            self.pos_of[qemu] = (cpuid, int(bit))
            for s in [qemu] + aliases.split():
                self.spelling[s] = qemu
        self.models = {}        # name -> dict(vendor, aliases, features, source)
        self.alias_of = {}
        for row in self.raw['models']:
            cols = row.split('|')
            name, vendor, aliases, feats = cols[:4]
            self.models[name] = {'vendor': vendor, 'aliases': aliases.split(),
                                 'features': set(feats.split()),
                                 'source': cols[4] if len(cols) > 4 else None}
            for a in aliases.split():
                self.alias_of[a] = name


# --------------------------------------------------------------------------
# comparison

class Mapper:
    """libvirt feature name -> QEMU name, with how it was found."""

    def __init__(self, lv, table):
        self.lv, self.t = lv, table
        self.how = {}           # libvirt name -> (kind, qemu or None)

    def map(self, name):
        if name in self.how:
            return self.how[name]
        f = self.lv.features.get(name)
        if f is not None:
            res = None
            for key in f['keys']:
                q = self.t.by_pos.get((key, f['bit']))
                if q:
                    res = ('position', q)
                    break
            if res is None:
                if any(is_excluded_position(k) for k in f['keys']):
                    res = ('excluded', None)
                else:
                    res = ('not-in-table', None)
        elif name.startswith('vmx-'):
            res = ('excluded', None)
        elif name in self.t.spelling:
            res = ('name', self.t.spelling[name])
        else:
            res = ('unknown', None)
        self.how[name] = res
        return res

    def libvirt_knows(self, qemu):
        """Does x86_features.xml define the CPUID position of QEMU feature `qemu`?"""
        key, bit = self.t.pos_of[qemu]
        for f in self.lv.features.values():
            if key in f['keys'] and f['bit'] == bit:
                return True
        return False


def compare(lv, table):
    mp = Mapper(lv, table)
    results = []            # per compared model
    new = []                # libvirt models the table lacks
    unread = []             # versioned models whose alias target was not read
    for name in sorted(lv.models):
        vm = VERSIONED.match(name)
        if not vm:
            continue
        alias = lv.alias_of(name)
        if alias is not None and alias not in lv.models:
            unread.append({'name': name, 'alias': alias, 'file': lv.models[name]['file']})
            continue
        vendor, feats = lv.expand(name)
        mapped, unmapped, excluded = set(), [], []
        for f in sorted(feats):
            kind, q = mp.map(f)
            if kind in ('position', 'name'):
                mapped.add(q)
            elif kind == 'excluded':
                excluded.append(f)
            else:
                unmapped.append((f, kind))
        qvendor = VENDORS.get(vendor)
        target = name if name in table.models else table.alias_of.get(name)
        if target is None or table.models[target]['source'] == MARKER:
            new.append({'name': name, 'base': vm.group('base'), 'ver': int(vm.group('ver')),
                        'vendor': qvendor, 'lv_vendor': vendor, 'features': mapped,
                        'unmapped': unmapped, 'file': lv.models[name]['file']})
            continue
        tm = table.models[target]
        only_q = sorted(tm['features'] - mapped)
        only_l = sorted(mapped - tm['features'])
        reasons = []
        for f in only_q:
            if alias is not None and f not in LIBVIRT_SKIPS:
                reasons.append((f, 'QEMU only', ALIAS_WHY % alias, True))
            elif (name, f) in KNOWN:
                reasons.append((f, 'QEMU only', KNOWN[(name, f)], True))
            elif f in LIBVIRT_SKIPS:
                reasons.append((f, 'QEMU only', 'libvirt\'s model sync skips this feature '
                                'in every model (sync_qemu_models_i386.py)', True))
            elif not mp.libvirt_knows(f):
                reasons.append((f, 'QEMU only', 'x86_features.xml has no feature at %s bit %d: '
                                'libvirt\'s model sync drops features libvirt does not know'
                                % table.pos_of[f], True))
            else:
                reasons.append((f, 'QEMU only', 'libvirt knows the bit but its model lacks it',
                                False))
        for f in only_l:
            if alias is not None:
                reasons.append((f, 'libvirt only', ALIAS_WHY % alias, True))
            elif (name, f) in KNOWN:
                reasons.append((f, 'libvirt only', KNOWN[(name, f)], True))
            else:
                reasons.append((f, 'libvirt only', 'libvirt\'s model has it, QEMU %s\'s does not'
                                % table.raw['qemu']['version'], False))
        for f, kind in unmapped:
            if alias is not None:
                reasons.append((f, 'libvirt only', ALIAS_WHY % alias, True))
                continue
            reasons.append((f, 'libvirt only',
                            'QEMU %s names no feature at this position' % table.raw['qemu']['version']
                            if kind == 'not-in-table' else
                            'not in x86_features.xml and no QEMU spelling', True))
        vendor_ok = qvendor is None or qvendor == tm['vendor']
        if not vendor_ok:
            reasons.append(('vendor', 'both', 'libvirt %s, QEMU %s' % (vendor, tm['vendor']), False))
        results.append({'name': name, 'target': target, 'file': lv.models[name]['file'],
                        'alias': alias,
                        'reasons': reasons, 'excluded': len(excluded),
                        'agree': not reasons,
                        'agree_modulo_skips': all(f in LIBVIRT_SKIPS for f, *_ in reasons)})
    return mp, results, new, unread


# --------------------------------------------------------------------------
# report

def report(lv, table, mp, results, new, addable, unread=()):
    out = []
    w = out.append
    qv = table.raw['qemu']['version']
    agree = [r for r in results if r['agree']]
    w('# libvirt cpu_map vs. the QEMU %s model table\n' % qv)
    w('- libvirt versioned models read: %d' % (len(results) + len(new) + len(unread)))
    w('- not compared, alias of a libvirt model whose file was not read: %d' % len(unread))
    w('- compared (same versioned name in both): %d' % len(results))
    gen = [r for r in results if r['alias'] is None]
    w('  - generated from QEMU by the model sync: %d; aliases of libvirt\'s own models: %d'
      % (len(gen), len(results) - len(gen)))
    skips = [r for r in results if not r['agree'] and r['agree_modulo_skips']]
    w('- agreeing feature sets (and vendor): %d' % len(agree))
    w('- agreeing once the features libvirt skips on purpose (%s) are set aside: %d'
      % (', '.join(LIBVIRT_SKIPS), len(skips)))
    rest = [r for r in results if not r['agree'] and not r['agree_modulo_skips']]
    unexpl = [r for r in rest if any(not ex for *_x, ex in r['reasons'])]
    w('- disagreeing otherwise: %d (aliases of libvirt\'s own models: %d; generated, '
      'explained: %d; unexplained: %d)'
      % (len(rest), sum(1 for r in rest if r['alias']),
         sum(1 for r in rest if not r['alias'] and r not in unexpl), len(unexpl)))
    w('- libvirt models the table lacks: %d (addable: %d)\n' % (len(new), len(addable)))
    w('## Spelling map (libvirt name -> QEMU name, where they differ)\n')
    for n, (kind, q) in sorted(mp.how.items()):
        if q and q != n:
            w('- `%s` -> `%s` (by %s)' % (n, q, 'CPUID position' if kind == 'position' else 'QEMU alias'))
    by_name = sorted(n for n, (k, _) in mp.how.items() if k == 'name')
    if by_name:
        w('\nMatched by spelling only (not in this x86_features.xml): %s'
          % ', '.join('`%s`' % n for n in by_name))
    nomig = sorted(n for n in mp.how if n in lv.features and not lv.features[n]['migratable'])
    if nomig:
        w('\nFeatures libvirt marks migratable=\'no\' that models use: %s '
          '(listed in the model all the same; no effect on the comparison)'
          % ', '.join('`%s`' % n for n in nomig))
    w('\n## Disagreements\n')
    if len(agree) == len(results):
        w('None.')
    for r in results:
        if r['agree']:
            continue
        tgt = '' if r['target'] == r['name'] else ' (table: %s)' % r['target']
        ali = '' if r['alias'] is None else ' (alias of libvirt\'s %s)' % r['alias']
        w('- **%s**%s, `%s`%s:' % (r['name'], tgt, r['file'], ali))
        groups = {}         # same side and reason: one line
        for f, side, why, explained in r['reasons']:
            groups.setdefault((side, why, explained), []).append(f)
        for (side, why, explained), fs in groups.items():
            w('  - %s %s: %s%s' % (', '.join('`%s`' % f for f in fs), side, why,
                                   '' if explained else ' [unexplained]'))
    w('\n## Agreeing\n')
    w(', '.join(r['name'] for r in agree) or 'none')
    if unread:
        w('\n## Not compared (alias of a libvirt model not read)\n')
        w(', '.join('%s (%s)' % (u['name'], u['alias']) for u in unread))
    w('\n## Models only libvirt has\n')
    for n in new:
        if n in addable:
            w('- %s (%s): addable, %d features' % (n['name'], n['vendor'], len(n['features'])))
        else:
            why = []
            if n['vendor'] is None:
                why.append('vendor %s unknown' % n['lv_vendor'])
            if n['unmapped']:
                why.append('features QEMU %s does not name: %s'
                           % (qv, ', '.join(f for f, _ in n['unmapped'])))
            w('- %s: skipped (%s)' % (n['name'], '; '.join(why)))
    return '\n'.join(out) + '\n'


# --------------------------------------------------------------------------
# write

def write(table, new, addable, args):
    raw = table.raw
    if args.new_feature:
        rows = list(raw['features'])
        for row in args.new_feature:
            if len(row.split('|')) != 5:
                raise InputError('--new-feature %r: expected qemu|cpuid|bit|linux|aliases' % row)
            q = row.split('|')[0]
            rows = [r for r in rows if r.split('|')[0] != q] + [row]
        raw['features'] = sorted(rows, key=lambda r: (r.split('|')[0], r.split('|')[1],
                                                      int(r.split('|')[2])))
    known = set()
    for row in raw['models']:
        cols = row.split('|')
        if len(cols) == 4:
            known.add(cols[0])
            known.update(cols[2].split())
    rows = [r for r in raw['models'] if len(r.split('|')) == 4]
    added = []
    for n in addable:
        aliases = []
        if n['ver'] == 1 and n['base'] not in known:
            aliases.append(n['base'])
        rows.append('|'.join([n['name'], n['vendor'], ' '.join(aliases),
                              ' '.join(sorted(n['features'])), MARKER]))
        added.append(n['name'])
        known.add(n['name'])
        known.update(aliases)
    raw['models'] = sorted(rows, key=lambda r: r.split('|')[0])
    raw['unresolved'] = sorted(n for n in raw.get('unresolved', []) if n not in known)
    raw['libvirt'] = {
        'ref': args.libvirt_ref,
        'file': 'src/cpu_map/x86_<Model>-vN.xml, x86_features.xml',
        'models': sorted(added),
    }
    if args.new_feature:
        raw['libvirt']['features'] = sorted(r.split('|')[0] for r in args.new_feature)
        raw['libvirt']['features_source'] = args.new_feature_source or ''
    cols = raw.get('columns', {})
    cols['models'] = ("name|vendor (default: the host's)|aliases (space-separated)|"
                      "features (space-separated)[|source: 'libvirt' = added from libvirt's "
                      "cpu_map by tools/check-libvirt-models.py, not in the QEMU release above]")
    raw['columns'] = cols
    with open(table.path, 'w', encoding='utf-8') as f:
        f.write(json.dumps(raw, indent=1, ensure_ascii=False) + '\n')
    return added


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--cpu-map', required=True, help='directory of libvirt cpu_map XML files')
    ap.add_argument('--data', default='src/cpu/data/cpu-data.json')
    ap.add_argument('--report', help='write the Markdown report here (default: stdout)')
    ap.add_argument('--write', action='store_true', help='add the addable models to --data')
    ap.add_argument('--libvirt-ref', help='libvirt repository and commit(s) read (with --write)')
    ap.add_argument('--new-feature', action='append',
                    help='feature row qemu|cpuid|bit|linux|aliases to add (with --write)')
    ap.add_argument('--new-feature-source', help='where --new-feature positions come from')
    args = ap.parse_args(argv)
    try:
        if args.write and not args.libvirt_ref:
            raise InputError('--write needs --libvirt-ref')
        lv = Libvirt(args.cpu_map)
        table = Table(args.data)
        if args.new_feature:
            # let the comparison see the new features too
            for row in args.new_feature:
                qemu, cpuid, bit, _l, aliases = row.split('|')
                table.by_pos[(cpuid, int(bit))] = qemu
                table.pos_of[qemu] = (cpuid, int(bit))
                for s in [qemu] + aliases.split():
                    table.spelling[s] = qemu
        mp, results, new, unread = compare(lv, table)
        addable = [n for n in new if not n['unmapped'] and n['vendor']]
        text = report(lv, table, mp, results, new, addable, unread)
        if args.write:
            added = write(table, new, addable, args)
            print('added %d models: %s' % (len(added), ' '.join(added)), file=sys.stderr)
    except (InputError, ET.ParseError, OSError, ValueError, KeyError) as e:
        print('check-libvirt-models: error: %s' % e, file=sys.stderr)
        return 2
    if args.report:
        with open(args.report, 'w', encoding='utf-8') as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    unexplained = any(not ex for r in results for _f, _s, _w, ex in r['reasons'])
    return 1 if unexplained else 0


if __name__ == '__main__':
    sys.exit(main())
