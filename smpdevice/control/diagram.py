"""The controller's state diagram, drawn from the state machine itself (Mermaid)."""

from __future__ import annotations

from smpdevice.control import State, build_machine


class _Model:
    """A bare model: the diagram needs the machine's structure, not a pen."""

    def __getattr__(self, name: str):  # guards are never evaluated when drawing
        raise AttributeError(name)


def state_diagram_mermaid() -> str:
    """Every transition of the machine as a Mermaid stateDiagram."""
    machine = build_machine(_Model())
    lines = ["stateDiagram-v2", f"    [*] --> {State.DISCONNECTED.value}"]
    for trigger, event in machine.events.items():
        for source, transitions in event.transitions.items():
            for transition in transitions:
                label = trigger
                if transition.conditions:
                    label += " [" + ", ".join(str(c.func) for c in transition.conditions) + "]"
                lines.append(f"    {source} --> {transition.dest}: {label}")
    return "\n".join(lines) + "\n"

