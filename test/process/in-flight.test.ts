// InFlight holds what a request needs while it is in flight, in array slots
// (process/in-flight.ts says why not a Set). What the drain and the RS256
// signer rely on: each ticket takes its own item once, a stale ticket takes
// nothing even after its slot was reused, and size and iteration see exactly
// what is held.
import { InFlight } from '../../src/process/in-flight.js';

test('each ticket takes its own item, once', () => {
  const held = new InFlight<{ name: string }>();
  const a = { name: 'a' };
  const b = { name: 'b' };
  const ta = held.add(a);
  const tb = held.add(b);
  expect(held.size).toBe(2);
  expect([...held]).toEqual([a, b]);
  expect(held.take(ta)).toBe(a);
  expect(held.take(ta)).toBeUndefined();
  expect(held.size).toBe(1);
  expect([...held]).toEqual([b]);
  expect(held.take(tb)).toBe(b);
  expect(held.size).toBe(0);
  expect([...held]).toEqual([]);
});

test('a slot is reused, and the ticket of its earlier item takes nothing from it', () => {
  const held = new InFlight<{ name: string }>();
  const first = held.add({ name: 'first' });
  held.take(first);
  const second = { name: 'second' };
  const ticket = held.add(second);
  expect(ticket.slot).toBe(first.slot);
  expect(held.take(first)).toBeUndefined();
  expect(held.size).toBe(1);
  expect(held.take({ slot: ticket.slot, ticket: ticket.ticket + 1 })).toBeUndefined();
  expect(held.take({ slot: 99, ticket: ticket.ticket })).toBeUndefined();
  expect(held.take(ticket)).toBe(second);
  expect(held.size).toBe(0);
});

test('many items in and out in any order: size and iteration match a reference count', () => {
  const held = new InFlight<{ n: number }>();
  const reference = new Map<number, { ticket: ReturnType<typeof held.add>; item: { n: number } }>();
  // A fixed sequence (a linear congruential generator), so a failure is repeatable.
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
  for (let i = 0; i < 5000; i += 1) {
    if (reference.size > 0 && next() % 3 === 0) {
      const keys = [...reference.keys()];
      const key = keys[next() % keys.length]!;
      const { ticket, item } = reference.get(key)!;
      expect(held.take(ticket)).toBe(item);
      reference.delete(key);
    } else {
      const item = { n: i };
      reference.set(i, { ticket: held.add(item), item });
    }
    expect(held.size).toBe(reference.size);
  }
  expect(new Set(held)).toEqual(new Set([...reference.values()].map((r) => r.item)));
});
