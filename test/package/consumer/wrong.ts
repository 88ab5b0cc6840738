// A wrong use of the API: request_finished's `status` is a number. tsc must reject this file.
import { signals } from 'tsgi';

signals.connect('request_finished', (event) => {
  const status: string = event.status;
  void status;
});
