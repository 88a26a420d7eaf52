// The JS agent (@icp-sdk/core) against a running local network: for an Ed25519 and a P-256
// identity, a signed query, an update, the deployer's version and a read_state of the
// deployer's module hash and candid:service, with the root key fetched from /api/v2/status.
// Usage: node smoke.mjs <.local-network.json>; exits non-zero on the first failure.
import { HttpAgent, Actor, CanisterStatus } from '@icp-sdk/core/agent';
import { Principal } from '@icp-sdk/core/principal';
import { Ed25519KeyIdentity, ECDSAKeyIdentity } from '@icp-sdk/core/identity';
import assert from 'node:assert/strict';
import fs from 'node:fs';

const network = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const probe = Principal.fromText(network.fixtures.probe);
const deployer = Principal.fromText(network.deployer);
const identities = [['ed25519', Ed25519KeyIdentity.generate()], ['p256', await ECDSAKeyIdentity.generate()]];
for (const [name, identity] of identities) {
  const agent = await HttpAgent.create({ host: network.url, shouldFetchRootKey: true, identity });
  assert.equal(Buffer.from(agent.rootKey).toString('hex'), network.root_key);
  const probeActor = Actor.createActor(({ IDL }) => IDL.Service({
    caller: IDL.Func([], [IDL.Principal], ['query']),
    echo: IDL.Func([IDL.Vec(IDL.Nat8)], [IDL.Vec(IDL.Nat8)], []),
  }), { agent, canisterId: probe });
  assert.equal((await probeActor.caller()).toText(), identity.getPrincipal().toText());
  assert.deepEqual(Array.from(await probeActor.echo([1, 2, 3])), [1, 2, 3]);
  const deployerActor = Actor.createActor(({ IDL }) => IDL.Service({
    version: IDL.Func([], [IDL.Record({ version: IDL.Text })], ['query']),
  }), { agent, canisterId: deployer });
  assert.match((await deployerActor.version()).version, /^\d+\.\d+\.\d+/);
  const status = await CanisterStatus.request({ canisterId: deployer, agent, paths: ['module_hash', 'candid'] });
  assert.match(status.get('module_hash'), /^[0-9a-f]{64}$/);
  assert.match(status.get('candid'), /add_role/);
  console.log(`${name}: query, update and read_state verified`);
}
