#!/usr/bin/env python3
"""Fails when modules of crates/server import each other in a circle.

Reads every `crate::…` and `super::…` path outside `#[cfg(test)]` code, maps
it to the module it names, and looks for strongly connected components. A
child using its parent (`super::bearer`) is the normal Rust shape and is not
counted. Run by scripts/test.sh; no crate does this for a binary crate
without nightly (cargo-modules needs a rust-analyzer build).
"""
import os
import re
import sys
root=os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crates', 'server', 'src')
mods={}
for dp,_,fs in os.walk(root):
    for f in fs:
        if not f.endswith('.rs'): continue
        p=os.path.join(dp,f); rel=os.path.relpath(p,root)[:-3]
        parts=rel.split('/')
        if parts[-1] in ('mod', 'main', 'lib'): parts=parts[:-1]
        mods['::'.join(parts)]=open(p).read()
def strip_tests(s):
    i=s.find('#[cfg(test)]')
    return s if i<0 else s[:i]
edges={m:set() for m in mods}
names=set(mods)
for m,s in mods.items():
    s=strip_tests(s)
    base=m.split('::') if m else []
    for mt in re.finditer(r'\b(crate|super)((?:::[a-z_][a-z0-9_]*)+)',s):
        kind,path=mt.group(1),mt.group(2).strip(':').split('::')
        if kind=='crate': cand=path
        else:
            # `super` of module a::b is a
            cand=base[:-1]+path
        # the longest prefix of the path that is a module
        for k in range(len(cand),0,-1):
            t='::'.join(cand[:k])
            if t in names and t!=m and not m.startswith(t+'::') :
                edges[m].add(t); break
# find cycles via Tarjan SCC
idx={};low={};st=[];on=set();sccs=[];i=[0]
def sc(v):
    idx[v]=low[v]=i[0];i[0]+=1;st.append(v);on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w);low[v]=min(low[v],low[w])
        elif w in on: low[v]=min(low[v],idx[w])
    if low[v]==idx[v]:
        c=[]
        while True:
            w=st.pop();on.discard(w);c.append(w)
            if w==v:break
        if len(c)>1: sccs.append(c)
sys.setrecursionlimit(10000)
for v in edges:
    if v not in idx: sc(v)
for c in sccs: print('cycle among:',sorted(c))
if not sccs: print('no import circle')
sys.exit(1 if sccs else 0)
