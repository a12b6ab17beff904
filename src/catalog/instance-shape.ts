import type { HealthStatus, Instance } from './model';
import { shareParts } from './shared-parts';

/**
 * An instance record that arrived from elsewhere (a bus message), checked field by field
 * before anything routes on it: every field the data plane reads has the type it expects.
 * Returns the record shared and frozen (sharedInstance), or undefined.
 */
export function checkedInstance(value: unknown): Instance | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (!isName(v.id) || !isName(v.service) || typeof v.address !== 'string' || v.address.length > 255) return undefined;
  if (!Number.isInteger(v.port) || (v.port as number) < 1 || (v.port as number) > 65535) return undefined;
  if (!isStringArray(v.tags) || !isStringRecord(v.meta) || !isWeights(v.weights)) return undefined;
  if (!Array.isArray(v.checks) || !v.checks.every(isCheck)) return undefined;
  if (v.drained !== undefined && typeof v.drained !== 'boolean') return undefined;
  if (!isIndex(v.createIndex) || !isIndex(v.modifyIndex)) return undefined;
  return sharedInstance(v as unknown as Instance);
}

/**
 * A record every reader shares (the view, caches, balancers): its parts alike across instances
 * held once (shared-parts.ts), then frozen, nested parts too.
 */
export function sharedInstance(instance: Instance): Instance {
  shareParts(instance);
  for (const check of instance.checks) Object.freeze(check);
  Object.freeze(instance.checks);
  Object.freeze(instance.tags);
  Object.freeze(instance.meta);
  Object.freeze(instance.weights);
  return Object.freeze(instance);
}

const STATUSES: ReadonlySet<string> = new Set<HealthStatus>(['passing', 'warning', 'critical']);

function isName(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 512;
}

function isStringArray(value: unknown): boolean {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function isStringRecord(value: unknown): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.values(value).every((item) => typeof item === 'string');
}

function isWeights(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { passing, warning } = value as Record<string, unknown>;
  return isWeight(passing) && isWeight(warning);
}

function isWeight(value: unknown): boolean {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

function isCheck(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const { checkId, status } = value as Record<string, unknown>;
  return typeof checkId === 'string' && typeof status === 'string' && STATUSES.has(status);
}

function isIndex(value: unknown): boolean {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
