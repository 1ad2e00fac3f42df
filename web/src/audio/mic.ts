/** The microphone through the AudioWorklet: calls `onFrame` with PCM16LE 16 kHz frames. */
import workletUrl from "./mic-worklet.ts?worker&url";

const MIC_PROCESSOR = "voxflow-mic";

export interface Microphone {
  stop(): void;
}

/** Loads the worklet module; do this before opening the microphone (it starts at once). */
export async function loadMicWorklet(context: AudioContext): Promise<void> {
  await context.audioWorklet.addModule(workletUrl);
}

export async function openMicrophone(
  context: AudioContext,
  onFrame: (frame: ArrayBuffer) => void,
  frameMs = 20,
): Promise<Microphone> {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
  });
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, MIC_PROCESSOR, {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: "explicit",
    processorOptions: { outRate: 16000, frameMs },
  });
  node.port.onmessage = (event: MessageEvent<ArrayBuffer>) => onFrame(event.data);
  source.connect(node);
  // The node outputs silence; connecting it keeps the graph pulling it.
  node.connect(context.destination);
  return {
    stop() {
      node.port.onmessage = null;
      source.disconnect();
      node.disconnect();
      for (const track of stream.getTracks()) track.stop();
    },
  };
}
