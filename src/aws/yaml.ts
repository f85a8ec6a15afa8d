// A YAML writer for JSON-shaped data (CloudFormation templates). Every string
// value is written double-quoted with JSON escapes, which YAML reads the same
// way, so nothing can be mistaken for a number, a date or a boolean
// ("2012-10-17" stays a string); keys are quoted unless plainly safe.
type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

const PLAIN_KEY = /^[A-Za-z][A-Za-z0-9_-]*$/;

function scalar(value: Exclude<Json, Json[] | { [key: string]: Json }>): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function key(k: string): string {
  return PLAIN_KEY.test(k) ? k : JSON.stringify(k);
}

function lines(value: Json, indent: string): string[] {
  if (Array.isArray(value)) {
    if (value.length === 0) return [`${indent}[]`];
    return value.flatMap((item) => {
      if (item !== null && typeof item === 'object' && !(Array.isArray(item) && item.length === 0) && Object.keys(item).length > 0) {
        const [first, ...rest] = lines(item, `${indent}  `);
        return [`${indent}- ${first!.trimStart()}`, ...rest];
      }
      return [`${indent}- ${inline(item)}`];
    });
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value);
    if (entries.length === 0) return [`${indent}{}`];
    return entries.flatMap(([k, v]) => {
      if (v !== null && typeof v === 'object' && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0)) {
        return [`${indent}${key(k)}:`, ...lines(v, `${indent}  `)];
      }
      return [`${indent}${key(k)}: ${inline(v)}`];
    });
  }
  return [`${indent}${scalar(value)}`];
}

function inline(value: Json): string {
  if (Array.isArray(value)) return '[]';
  if (value !== null && typeof value === 'object') return '{}';
  return scalar(value);
}

export function toYaml(value: unknown): string {
  return `${lines(value as Json, '').join('\n')}\n`;
}
