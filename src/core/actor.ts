// Who the audit log says acted. For the local administrator that is the OS
// user the kernel names (`os:NAME`, or `uid:N` when the passwd database has
// no name for the uid); what a client says about itself is only a label kept
// beside it, never the actor.

/** An actor's name, or that name with the caller's own unverified label (recorded as `details.actor_label`). */
export type Actor = string | { name: string; label: string };

/** A label: short, printable, nothing a log or a table would misread. */
export const ACTOR_LABEL = /^[A-Za-z0-9._@+:-]{1,64}$/;

export function actorName(a: Actor): string {
  return typeof a === 'string' ? a : a.name;
}

export function actorLabel(a: Actor): string | undefined {
  return typeof a === 'string' ? undefined : a.label;
}

/** `os:NAME` for a uid the passwd database names, `uid:N` otherwise. */
export function osActor(uid: number, name: string | null): string {
  const clean = name?.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64);
  return clean ? `os:${clean}` : `uid:${uid}`;
}

/** The actor with a label beside it when there is a valid one that says something the name does not. */
export function withLabel(name: string, label: string | undefined): Actor {
  return label !== undefined && ACTOR_LABEL.test(label) && label !== name ? { name, label } : name;
}
