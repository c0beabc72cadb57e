// The topology picture: relays on a circle, one line per pair. A pair whose peer link carries a partition fault
// (either direction), or whose link is disabled, is drawn cut: dashed red with a break mark across its middle.
const NS = 'http://www.w3.org/2000/svg';
const CUT_TYPES = new Set(['partition']);

function el(name, attrs, text) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The state of the one-way link from -> to: cut, fault, down or ok (and why). */
function direction(nodes, from, to) {
  const n = nodes.find((x) => x.node === from);
  if (!n) return { state: 'down', why: `${from}: no data` };
  const link = n.links.find((l) => l.name === `peer-${to}`);
  const peer = n.peers.find((p) => p.node === to);
  if (link && (!link.enabled || link.faults.some((f) => CUT_TYPES.has(f.type)))) {
    return { state: 'cut', why: `${from}→${to} cut (${link.enabled ? link.faults.filter((f) => CUT_TYPES.has(f.type)).map((f) => f.name).join(', ') : 'link disabled'})` };
  }
  if (link && link.faults.length) return { state: 'fault', why: `${from}→${to}: ${link.faults.map((f) => f.type).join(', ')}` };
  if (!n.relayUp || (peer && peer.status !== 'up')) return { state: 'down', why: `${from} sees ${to} ${n.relayUp ? peer.status : 'relay down'}` };
  return { state: 'ok', why: `${from}→${to} up` };
}

const RANK = { ok: 0, down: 1, fault: 2, cut: 3 };

/** Draws the picture; onNodeClick(name) lets the partition form assign groups by clicking nodes. */
export function drawTopology(svg, snapshot, { groups, onNodeClick }) {
  const nodes = snapshot.nodes;
  const w = 360, h = 300, cx = w / 2, cy = h / 2 + 5, r = Math.min(w, h) / 2 - 45;
  const pos = new Map(nodes.map((n, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / nodes.length;
    return [n.node, { x: cx + r * Math.cos(a), y: cy + r * Math.sin(a) }];
  }));
  svg.replaceChildren();
  for (let i = 0; i < nodes.length; i++) {
    for (let j = i + 1; j < nodes.length; j++) {
      const a = nodes[i].node, b = nodes[j].node;
      const ab = direction(nodes, a, b), ba = direction(nodes, b, a);
      const state = RANK[ab.state] >= RANK[ba.state] ? ab.state : ba.state;
      const p = pos.get(a), q = pos.get(b);
      const line = el('line', { x1: p.x, y1: p.y, x2: q.x, y2: q.y, class: `link ${state}`, 'data-link': `${a}-${b}`, 'data-state': state });
      line.append(el('title', {}, `${ab.why}; ${ba.why}`));
      svg.append(line);
      if (state === 'cut') {
        // The break: a short bar across the middle of the line.
        const mx = (p.x + q.x) / 2, my = (p.y + q.y) / 2, dx = q.x - p.x, dy = q.y - p.y, len = Math.hypot(dx, dy) || 1;
        const nx = (-dy / len) * 10, ny = (dx / len) * 10;
        svg.append(el('line', { x1: mx - nx, y1: my - ny, x2: mx + nx, y2: my + ny, class: 'cutmark' }));
      }
    }
  }
  for (const n of nodes) {
    const p = pos.get(n.node);
    const cls = !n.relayUp ? 'unreachable' : n.partitioned ? 'partitioned' : n.mode !== 'normal' ? 'degraded' : 'ok';
    const g = el('g', { class: `node ${cls}`, 'data-node': n.node, transform: `translate(${p.x},${p.y})` });
    g.append(el('circle', { r: 24 }));
    g.append(el('text', { y: 5 }, `relay-${n.node}`.replace('relay-', '')));
    g.append(el('text', { y: 42, class: 'state' }, !n.relayUp ? 'unreachable' : n.partitioned ? 'partitioned' : n.mode !== 'normal' ? n.mode ?? '' : ''));
    const group = groups?.get(n.node);
    if (group !== undefined) g.append(el('text', { y: -30, class: 'group' }, `group ${group + 1}`));
    g.append(el('title', {}, `relay-${n.node}: mode ${n.mode}, cache ${n.cache}, partitioned ${n.partitioned}`));
    g.addEventListener('click', () => onNodeClick?.(n.node));
    svg.append(g);
  }
}
