// Parse LogQL queries with Grafana's own grammar (@grafana/lezer-logql), many per process.
// Usage: node parse.mjs <dir holding node_modules/@grafana/lezer-logql>  < JSON array of queries
// Prints a JSON array, one object per query: {error: {pos, text} | null, kind: "log" | "metric",
// selectors: [[[name, op, value], ...], ...], stages: [...], grouping: [...]} (see tests/support/logql.py).
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const require = createRequire(join(process.argv[2], 'package.json'));
const { parser } = require('@grafana/lezer-logql');

const OPS = { Eq: '=', Neq: '!=', Re: '=~', Nre: '!~', Eql: '==', Gtr: '>', Gte: '>=', Lss: '<', Lte: '<=' };
const LINE_OPS = { PipeExact: '|=', PipeMatch: '|~', PipePattern: '|>', Neq: '!=', Nre: '!~', Npa: '!>' };
const PARSERS = new Set(['Json', 'Logfmt', 'Regexp', 'Unpack', 'Pattern']);
const FILTERS = new Set(['Matcher', 'DurationFilter', 'BytesFilter', 'NumberFilter', 'IpLabelFilter']);

function kids(node) {
  const out = [];
  for (let c = node.firstChild; c; c = c.nextSibling) out.push(c);
  return out;
}

// A LogQL string: Go's double-quoted syntax (strconv.Unquote, as Loki reads it) or a raw backtick string.
function unquote(text) {
  if (text.startsWith('`')) return text.slice(1, -1);
  return JSON.parse(text); // throws on what Go refuses too (`"\."`): Loki answers 400 for it
}

function analyse(q) {
  const tree = parser.parse(q);
  const res = { error: null, kind: null, selectors: [], stages: [], grouping: [] };
  const fail = (pos, why) => {
    if (!res.error) res.error = { pos, text: `${why} at position ${pos}: ${JSON.stringify(q.slice(Math.max(0, pos - 20), pos + 20))}` };
  };
  const str = (node) => {
    const raw = q.slice(node.from, node.to);
    try {
      return unquote(raw);
    } catch (e) {
      fail(node.from, `invalid string ${raw} (${e.message}; use \\\\ or backticks for a backslash)`);
      return raw;
    }
  };
  const matcher = (m) => {
    const [id, op, s] = kids(m);
    return [q.slice(id.from, id.to), OPS[op.name] ?? op.name, s && s.name === 'String' ? str(s) : null];
  };
  const top = tree.topNode.firstChild?.firstChild;
  res.kind = top ? (top.name === 'LogExpr' ? 'log' : 'metric') : null;
  tree.iterate({ // Grafana's editor marks what it cannot parse with error nodes (⚠): any one is a failure
    enter(ref) {
      if (ref.type.isError) fail(ref.from, 'syntax error');
    },
  });
  tree.iterate({
    enter(ref) {
      const n = ref.node;
      if (n.name === 'Selector') {
        const ms = [];
        n.cursor().iterate((c) => {
          if (c.name === 'Matcher') ms.push(matcher(c.node));
        });
        res.selectors.push(ms);
        return false;
      }
      if (n.name === 'Grouping') {
        n.cursor().iterate((c) => {
          if (c.name === 'Identifier') res.grouping.push(q.slice(c.from, c.to));
        });
      }
      if (n.name === 'LineFilter') {
        const f = n.getChild('Filter');
        const op = f ? kids(f)[0] : null;
        const strings = [];
        n.cursor().iterate((c) => {
          if (c.name === 'String') strings.push(str(c.node));
        });
        res.stages.push({ type: 'line_filter', op: op ? (LINE_OPS[op.name] ?? op.name) : '?', strings });
        return false;
      }
      if (n.name === 'PipelineStage') {
        const body = kids(n).find((c) => c.name !== 'Pipe' && c.name !== 'LineFilters');
        if (!body) return true; // line filters: entered below
        if (body.name === 'LabelParser') {
          const p = kids(body).find((c) => PARSERS.has(c.name));
          const arg = body.getChild('String');
          res.stages.push({ type: 'parser', parser: p ? p.name.toLowerCase() : '?', arg: arg ? str(arg) : null });
        } else if (body.name === 'JsonExpressionParser' || body.name === 'LogfmtExpressionParser') {
          const extracts = [];
          body.cursor().iterate((c) => {
            if (c.name === 'LabelExtractionExpression') {
              const id = c.node.getChild('Identifier');
              if (id) extracts.push(q.slice(id.from, id.to));
            }
          });
          res.stages.push({ type: 'parser', parser: body.name === 'JsonExpressionParser' ? 'json' : 'logfmt', extracts });
        } else if (body.name === 'LogfmtParser') {
          res.stages.push({ type: 'parser', parser: 'logfmt' });
        } else if (body.name === 'LabelFilter') {
          const filters = [];
          body.cursor().iterate((c) => {
            if (!FILTERS.has(c.name)) return true;
            const cs = kids(c.node);
            const id = cs.find((x) => x.name === 'Identifier');
            const op = cs.find((x) => x.name in OPS);
            const lit = cs.find((x) => x.name === 'LiteralExpr');
            const val = cs.find((x) => ['String', 'Number', 'Duration', 'Bytes'].includes(x.name)) ?? lit?.getChild('Number');
            filters.push({
              label: id ? q.slice(id.from, id.to) : null, op: op ? OPS[op.name] : null,
              value: val ? (val.name === 'String' ? str(val) : q.slice(val.from, val.to)) : null,
              value_type: val ? val.name.toLowerCase() : null,
            });
            return false;
          });
          res.stages.push({ type: 'label_filter', filters });
        } else {
          res.stages.push({ type: body.name.replace(/Expr$/, '').replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase() });
        }
        return false;
      }
      return true;
    },
  });
  if (!top) fail(0, 'empty query');
  return res;
}

const queries = JSON.parse(readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(queries.map(analyse)));
