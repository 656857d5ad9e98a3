/** A clock tests move by hand. Starts in the middle of a TOTP step. */
export class TestClock {
  constructor(public ms = Date.parse('2026-11-22T12:00:15Z')) {}
  now = () => new Date(this.ms);
  advance(seconds: number) {
    this.ms += seconds * 1000;
  }
}
