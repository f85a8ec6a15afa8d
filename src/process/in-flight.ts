// What a long-lived part of the process holds for a request while it is in
// flight (its response, its connection, the signature it waits for), in a
// form V8's minor collections see through.
//
// Why not a Set or a Map: V8 gives a Set or Map a new table when it grows or
// has too many deleted entries, allocates it in the generation of the table
// it replaces, and leaves the entries in the table it replaced, for
// iterators still walking it (OrderedHashTable::Rehash in V8's
// src/objects/ordered-hash-table.cc). A collection made at start-up and idle
// for a few collections has an old-generation table, so all its tables are
// old from then on, and every replaced one, dead but old, keeps what it held
// alive through minor collections until the next full one. A Set of the
// responses in flight thus promoted whole requests to the old generation:
// GET /id-token, ES256, 4 connections, 2,335 bytes promoted per request (with
// this: 144); the exchange at 16 connections 3,196 (397); a Set aged before
// use, 11.7 KB for each 12 KB entry (with this: 1 byte). An array's slot that
// is emptied holds nothing (docs/performance.md, "Garbage collection").
export class InFlight<T extends object> {
  private readonly slots: ({ item: T; ticket: number } | undefined)[] = [];
  /** Empty slots, reused before the array grows. */
  private readonly free: number[] = [];
  private nextTicket = 0;

  /**
   * Holds `item` until `take` is given what this returns. The ticket tells a
   * slot's current item from an earlier one that was in the same slot: a
   * stale or made-up ticket takes nothing.
   */
  add(item: T): InFlightTicket {
    const slot = this.free.pop() ?? this.slots.length;
    const ticket = this.nextTicket++;
    this.slots[slot] = { item, ticket };
    return { slot, ticket };
  }

  /** The item `held` names, no longer held; undefined if it was taken already. */
  take(held: InFlightTicket): T | undefined {
    const entry = this.slots[held.slot];
    if (entry === undefined || entry.ticket !== held.ticket) return undefined;
    this.slots[held.slot] = undefined;
    this.free.push(held.slot);
    return entry.item;
  }

  /** Every slot is either held or free. */
  get size(): number {
    return this.slots.length - this.free.length;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (const entry of this.slots) if (entry !== undefined) yield entry.item;
  }
}

/** Where an item is held, and which of the items held there it is. */
export interface InFlightTicket {
  readonly slot: number;
  readonly ticket: number;
}
