/**
 * The README configuration table and config/switchboard.example.yaml are generated from the
 * schema (`npm run docs:config`): these fail when a committed copy drifts from it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import YAML from 'yaml';
import { configTable, exampleYaml } from '../../src/config/docs';
import { defaultConfig, resolveConfig } from '../../src/config/load';
import { SETTINGS, envName } from '../../src/config/settings';
import { EXAMPLE, README, withTable } from '../../scripts/config-docs';

describe('generated configuration docs', () => {
  test('the README table is the one the schema generates (run npm run docs:config)', () => {
    const readme = readFileSync(README, 'utf8');
    assert.equal(readme, withTable(readme, configTable()));
  });

  test('config/switchboard.example.yaml is the one the schema generates (run npm run docs:config)', () => {
    assert.equal(readFileSync(EXAMPLE, 'utf8'), exampleYaml());
  });

  test('the example file loads to exactly the defaults', () => {
    assert.deepEqual(resolveConfig(YAML.parse(exampleYaml())), defaultConfig());
  });

  test('every flag and variable is in the table and in the example', () => {
    const table = configTable();
    const example = exampleYaml();
    for (const s of SETTINGS) {
      assert.ok(table.includes(`\`--${s.flag}\``), s.flag);
      assert.ok(table.includes(envName(s)), envName(s));
      assert.ok(example.includes(`--${s.flag},`), `example mentions --${s.flag}`);
    }
  });
});
