import type { EventEnvelope } from "../../services/kernel/index.js";
import { acmeAccountDecider, acmeConfigDecider, acmeEabDecider, acmeOrderDecider, evolveAccount, evolveOrder, type AcmeAccountState, type AcmeConfigState, type AcmeEabState, type AcmeOrderState } from "./domain.js";

/**
 * ACME state in the PKI read model (part of the `pki-certificates` projection, so the PKI's write model
 * decides ACME commands on it): configurations, accounts, orders, and the lookups the routes need.
 */
export interface AcmeModel {
  configs: Map<string, AcmeConfigState>;
  /** EAB key id -> its issuer, principal and bound account (never the HMAC key). */
  eabKeys: Map<string, AcmeEabState>;
  accounts: Map<string, AcmeAccountState>;
  /** `<issuer>/<JWK thumbprint>` -> account id (a key belongs to one account per issuer). */
  accountByKey: Map<string, string>;
  orders: Map<string, AcmeOrderState>;
  /** account id -> its order ids, oldest first. */
  ordersOf: Map<string, string[]>;
  /** authorization id -> order id. */
  orderOfAuthz: Map<string, string>;
  /** certificate serial -> order id. */
  orderOfCertificate: Map<string, string>;
}

export const emptyAcmeModel = (): AcmeModel => ({ configs: new Map(), eabKeys: new Map(), accounts: new Map(), accountByKey: new Map(), orders: new Map(), ordersOf: new Map(), orderOfAuthz: new Map(), orderOfCertificate: new Map() });

export const ACME_AGGREGATES: ReadonlySet<string> = new Set([acmeConfigDecider.aggregateType, acmeAccountDecider.aggregateType, acmeOrderDecider.aggregateType, acmeEabDecider.aggregateType]);

export function applyAcme(m: AcmeModel, e: EventEnvelope): void {
  const id = e.aggregate.id;
  if (e.aggregate.type === acmeConfigDecider.aggregateType) {
    m.configs.set(id, acmeConfigDecider.evolve(m.configs.get(id) ?? acmeConfigDecider.initialState(id), e));
  } else if (e.aggregate.type === acmeEabDecider.aggregateType) {
    m.eabKeys.set(id, acmeEabDecider.evolve(m.eabKeys.get(id) ?? acmeEabDecider.initialState(id), e));
  } else if (e.aggregate.type === acmeAccountDecider.aggregateType) {
    const before = m.accounts.get(id);
    const a = evolveAccount(before ?? acmeAccountDecider.initialState(id), e);
    m.accounts.set(id, a);
    if (before?.thumbprint && before.thumbprint !== a.thumbprint) m.accountByKey.delete(`${before.issuer}/${before.thumbprint}`);
    if (a.thumbprint) m.accountByKey.set(`${a.issuer}/${a.thumbprint}`, id);
  } else if (e.aggregate.type === acmeOrderDecider.aggregateType) {
    const before = m.orders.get(id);
    const o = evolveOrder(before ?? acmeOrderDecider.initialState(id), e);
    m.orders.set(id, o);
    indexOrder(m, o, !before?.exists);
  }
}

function indexOrder(m: AcmeModel, o: AcmeOrderState, isNew: boolean): void {
  if (isNew && o.exists && o.account) {
    const list = m.ordersOf.get(o.account) ?? [];
    list.push(o.id);
    m.ordersOf.set(o.account, list);
    for (const a of o.authorizations ?? []) m.orderOfAuthz.set(a.id, o.id);
  }
  if (o.certificate) m.orderOfCertificate.set(o.certificate, o.id);
}

/** Snapshot records of the ACME part (the indexes are rebuilt from the states on decode). */
export function* encodeAcme(m: AcmeModel): Iterable<unknown> {
  for (const [id, s] of m.configs) yield ["acme-config", id, s];
  for (const [id, s] of m.eabKeys) yield ["acme-eab", id, s];
  for (const [id, s] of m.accounts) yield ["acme-account", id, s];
  for (const [id, s] of m.orders) yield ["acme-order", id, s];
}

/** Applies one snapshot record; false when it is not an ACME record. */
export function decodeAcmeRecord(m: AcmeModel, r: [string, unknown, unknown]): boolean {
  if (r[0] === "acme-config") m.configs.set(r[1] as string, r[2] as AcmeConfigState);
  else if (r[0] === "acme-eab") m.eabKeys.set(r[1] as string, r[2] as AcmeEabState);
  else if (r[0] === "acme-account") {
    const a = r[2] as AcmeAccountState;
    m.accounts.set(a.id, a);
    if (a.thumbprint) m.accountByKey.set(`${a.issuer}/${a.thumbprint}`, a.id);
  } else if (r[0] === "acme-order") {
    const o = r[2] as AcmeOrderState;
    m.orders.set(o.id, o);
    indexOrder(m, o, true);
  } else return false;
  return true;
}
