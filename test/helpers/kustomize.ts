// A small, strict kustomize: renders deploy/kubernetes/ offline with the
// `yaml` package, so the manifests can be checked without kubectl. It knows
// the kustomization fields the manifests use (resources, namespace, images,
// patches: strategic merge by file or inline, JSON 6902 with a target) and
// throws on any other, so a manifest can never lean on a feature this
// renderer would silently skip. YAML is read as YAML 1.1, as kubectl reads it
// (`defaultMode: 0440` is octal there).
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

interface Target {
  kind?: string;
  name?: string;
  group?: string;
  version?: string;
}

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  namespace?: string;
  images?: { name: string; newName?: string; newTag?: string; digest?: string }[];
  patches?: { path?: string; patch?: string; target?: Target }[];
}

const FIELDS = new Set(['apiVersion', 'kind', 'resources', 'namespace', 'images', 'patches']);
const YAML_OPTIONS = { version: '1.1' as const };

/** Lists merged element by element on this key, as strategic merge patch does for these fields. */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  volumes: 'name',
  env: 'name',
  envFrom: '',
  volumeMounts: 'mountPath',
  ports: '',
  imagePullSecrets: 'name',
};

export class KustomizeError extends Error {}

export function kustomize(dir: string): K8sObject[] {
  const file = path.join(dir, 'kustomization.yaml');
  const k = parse(readFileSync(file, 'utf8'), YAML_OPTIONS) as Kustomization;
  const unknown = Object.keys(k).filter((key) => !FIELDS.has(key));
  if (unknown.length) throw new KustomizeError(`${file}: fields this renderer does not know: ${unknown.join(', ')}`);

  const objects: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const p = path.resolve(dir, entry);
    objects.push(...(statSync(p).isDirectory() ? kustomize(p) : readManifests(p)));
  }
  for (const patch of k.patches ?? []) applyPatch(objects, patch, dir);
  for (const image of k.images ?? []) setImage(objects, image);
  if (k.namespace) {
    for (const o of objects) if (o.kind !== 'Namespace') o.metadata.namespace = k.namespace;
  }
  const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) throw new KustomizeError(`${dir}: defined twice: ${twice.join(', ')}`);
  return objects;
}

export function readManifests(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'), YAML_OPTIONS)
    .map((doc) => {
      if (doc.errors.length) throw new KustomizeError(`${file}: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null)
    .map((o) => {
      if (!o.apiVersion || !o.kind || !o.metadata?.name) throw new KustomizeError(`${file}: an object without apiVersion, kind or metadata.name`);
      return o;
    });
}

function matches(o: K8sObject, t: Target): boolean {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['', o.apiVersion];
  return (
    (t.kind === undefined || t.kind === o.kind) &&
    (t.name === undefined || t.name === o.metadata.name) &&
    (t.group === undefined || t.group === group) &&
    (t.version === undefined || t.version === version)
  );
}

function applyPatch(objects: K8sObject[], spec: NonNullable<Kustomization['patches']>[number], dir: string): void {
  const text = spec.path ? readFileSync(path.resolve(dir, spec.path), 'utf8') : spec.patch;
  if (text === undefined) throw new KustomizeError(`${dir}: a patch needs path or patch`);
  const body = parse(text, YAML_OPTIONS) as Json;
  if (Array.isArray(body)) {
    if (!spec.target) throw new KustomizeError(`${dir}: a JSON 6902 patch needs a target`);
    const targets = objects.filter((o) => matches(o, spec.target!));
    if (!targets.length) throw new KustomizeError(`${dir}: no object matches the patch target ${JSON.stringify(spec.target)}`);
    for (const o of targets) for (const op of body) jsonPatch(o as unknown as JsonObject, op as JsonObject);
    return;
  }
  const patch = body as unknown as K8sObject;
  const target: Target = spec.target ?? { kind: patch.kind, name: patch.metadata?.name };
  const targets = objects.filter((o) => matches(o, target));
  if (!targets.length) throw new KustomizeError(`${dir}: no object matches the patch for ${patch.kind}/${patch.metadata?.name}`);
  for (const o of targets) {
    const merged = strategicMerge(o as unknown as JsonObject, { ...(patch as unknown as JsonObject), metadata: { ...patch.metadata, name: o.metadata.name } }, '');
    Object.assign(o, merged);
  }
}

function strategicMerge(base: JsonObject, patch: JsonObject, at: string): JsonObject {
  const out: JsonObject = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) throw new KustomizeError(`${at}/${key}: patch directives are not rendered here`);
    const here = `${at}/${key}`;
    const current = out[key];
    if (value === null) delete out[key];
    else if (Array.isArray(value) && Array.isArray(current) && MERGE_KEYS[key]) out[key] = mergeList(current, value, MERGE_KEYS[key]!, here);
    else if (Array.isArray(value) && key in MERGE_KEYS && MERGE_KEYS[key] === '' && Array.isArray(current)) {
      throw new KustomizeError(`${here}: merging this list is not rendered here; patch it with a JSON 6902 patch`);
    } else if (isObject(value) && isObject(current)) out[key] = strategicMerge(current, value, here);
    else out[key] = value;
  }
  return out;
}

function mergeList(base: Json[], patch: Json[], key: string, at: string): Json[] {
  const out = [...base];
  for (const item of patch) {
    if (!isObject(item) || item[key] === undefined) throw new KustomizeError(`${at}: every item of a patch needs ${key}`);
    const i = out.findIndex((b) => isObject(b) && b[key] === item[key]);
    if (i === -1) out.push(item);
    else out[i] = strategicMerge(out[i] as JsonObject, item, `${at}[${key}=${String(item[key])}]`);
  }
  return out;
}

function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function jsonPatch(doc: JsonObject, op: JsonObject): void {
  const { op: kind, path: pointer, value } = op as { op: string; path: string; value: Json };
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop()!;
  let parent: Json = doc;
  for (const p of parts) {
    parent = Array.isArray(parent) ? parent[Number(p)]! : isObject(parent) ? parent[p]! : undefined!;
    if (parent === undefined) throw new KustomizeError(`JSON patch ${kind} ${pointer}: no such path`);
  }
  const exists = Array.isArray(parent) ? Number(last) < parent.length : isObject(parent) && last in parent;
  if (kind === 'replace' || kind === 'remove') {
    if (!exists) throw new KustomizeError(`JSON patch ${kind} ${pointer}: no such path`);
  } else if (kind !== 'add') {
    throw new KustomizeError(`JSON patch op ${kind} is not rendered here`);
  }
  if (Array.isArray(parent)) {
    const i = last === '-' ? parent.length : Number(last);
    if (kind === 'remove') parent.splice(i, 1);
    else parent.splice(i, kind === 'replace' ? 1 : 0, value);
  } else if (isObject(parent)) {
    if (kind === 'remove') delete parent[last];
    else parent[last] = value;
  }
}

/** Pod specs of the workload kinds the manifests use. */
export function podSpecs(o: K8sObject): JsonObject[] {
  const spec = o.spec as JsonObject | undefined;
  if (!spec) return [];
  if (o.kind === 'Pod') return [spec];
  const template = (o.kind === 'CronJob' ? ((spec.jobTemplate as JsonObject).spec as JsonObject).template : spec.template) as JsonObject | undefined;
  return template?.spec ? [template.spec as JsonObject] : [];
}

function setImage(objects: K8sObject[], image: NonNullable<Kustomization['images']>[number]): void {
  for (const o of objects) {
    for (const pod of podSpecs(o)) {
      for (const c of [...((pod.containers as JsonObject[]) ?? []), ...((pod.initContainers as JsonObject[]) ?? [])]) {
        const ref = String(c.image);
        const m = /^(.*?)(?::([^:/@]+))?(?:@(.+))?$/.exec(ref)!;
        if (m[1] !== image.name) continue;
        const name = image.newName ?? m[1];
        c.image = image.digest ? `${name}@${image.digest}` : `${name}${image.newTag ?? m[2] ? `:${image.newTag ?? m[2]}` : ''}`;
      }
    }
  }
}
