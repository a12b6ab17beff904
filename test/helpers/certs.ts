/**
 * Certificates made at test time with the `openssl` command (the test command installs it when
 * missing): a CA, leaf certificates it signs for any names (DNS and IP subjectAltNames), an
 * expired one, a self-signed one, and client certificates for mTLS. Files live in a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './child';

export interface CertFiles {
  certFile: string;
  keyFile: string;
}

export class TestCA {
  readonly certFile: string;
  private readonly keyFile: string;
  private serial = 1;

  private constructor(readonly dir: string, readonly name: string) {
    this.certFile = path.join(dir, `${name}.crt`);
    this.keyFile = path.join(dir, `${name}.key`);
  }

  /** A new CA (its own temp dir unless one is given). */
  static create(name = 'test-ca', dir = makeTempDir('certs')): TestCA {
    const ca = new TestCA(dir, name);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', ca.keyFile, '-out', ca.certFile, '-days', '2', '-subj', `/CN=${name}`]);
    return ca;
  }

  get pem(): Buffer {
    return readFileSync(this.certFile);
  }

  /**
   * A leaf certificate for `names` (DNS names, or IP literals), written to `<file>.crt/.key`.
   * `expired`: valid only in 2020. `client`: for TLS client authentication.
   */
  issue(file: string, names: readonly string[], options: { expired?: boolean; client?: boolean } = {}): CertFiles {
    const out = { certFile: path.join(this.dir, `${file}.crt`), keyFile: path.join(this.dir, `${file}.key`) };
    const csr = path.join(this.dir, `${file}.csr`);
    const cn = names[0] ?? file;
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', out.keyFile, '-out', csr, '-subj', `/CN=${cn}`]);
    const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    const ext = path.join(this.dir, `${file}.ext`);
    writeFileSync(ext, [san ? `subjectAltName=${san}` : '', `extendedKeyUsage=${options.client ? 'clientAuth' : 'serverAuth'}`].filter(Boolean).join('\n') + '\n');
    if (options.expired) {
      this.signExpired(csr, ext, out.certFile);
    } else {
      openssl(['x509', '-req', '-in', csr, '-CA', this.certFile, '-CAkey', this.keyFile, '-set_serial', String(this.serial++), '-days', '2', '-extfile', ext, '-out', out.certFile]);
    }
    return out;
  }

  /** `openssl ca` is the one openssl 3.0 command that can back-date a certificate. */
  private signExpired(csr: string, ext: string, certFile: string): void {
    const db = path.join(this.dir, `ca-db-${this.serial}`);
    execFileSync('mkdir', ['-p', db]);
    writeFileSync(path.join(db, 'index.txt'), '');
    writeFileSync(path.join(db, 'serial'), `${(1000 + this.serial++).toString(16).padStart(4, '0')}\n`);
    const config = path.join(db, 'ca.cnf');
    writeFileSync(
      config,
      `[ca]\ndefault_ca=test\n[test]\ndir=${db}\ndatabase=${db}/index.txt\nserial=${db}/serial\nnew_certs_dir=${db}\ndefault_md=sha256\npolicy=any\ncopy_extensions=none\n[any]\ncommonName=supplied\n`,
    );
    openssl(['ca', '-batch', '-config', config, '-cert', this.certFile, '-keyfile', this.keyFile, '-in', csr, '-out', certFile, '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', ext, '-notext']);
  }
}

/** A self-signed certificate for `names` (trusted by nobody). */
export function selfSigned(dir: string, file: string, names: readonly string[]): CertFiles {
  const out = { certFile: path.join(dir, `${file}.crt`), keyFile: path.join(dir, `${file}.key`) };
  const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', out.keyFile, '-out', out.certFile, '-days', '2', '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${san}`]);
  return out;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}
